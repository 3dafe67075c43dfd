//! What a recorded request and answer must hold to be imported or served: checked for every
//! cassette file and every HAR entry, with errors that name the field (`path: …`,
//! `answers[0].headers[2]: …`). Credentials in any of their places are refused here too:
//! ims-vcr stores `REDACTED` in their place, so a real one means a hand-edited or foreign file.

use std::str::FromStr as _;

use hyper::header::{HeaderName, HeaderValue};
use hyper::http::uri::PathAndQuery;

use crate::model::credentials;
use crate::model::interaction::{RecordedRequest, RecordedResponse};

pub(crate) fn validate_request(request: &RecordedRequest) -> std::result::Result<(), String> {
    hyper::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("method: {:?} is not an HTTP method", request.method))?;
    let mut target = request.path.clone();
    if let Some(q) = &request.query {
        target.push('?');
        target.push_str(q);
    }
    if request.path.contains(['?', '#']) {
        return Err(format!(
            "path: {:?} holds a `?` or `#`; the query goes in `request.query`, and a fragment \
             is never sent",
            credentials::shown_url(&request.path)
        ));
    }
    if !request.path.starts_with('/') || PathAndQuery::from_str(&target).is_err() {
        return Err(format!(
            "path: {target:?} is not an origin-form request target"
        ));
    }
    let in_path = credentials::unmasked_in_path(&request.path).into_iter();
    let in_query = request.query.iter().flat_map(|q| credentials::unmasked_in_query(q));
    let mut found = in_path.map(|n| ("path", n)).chain(in_query.map(|n| ("query", n)));
    if let Some((field, name)) = found.next() {
        return Err(format!(
            "{field}: parameter {name:?} carries credentials and must not be in a cassette \
             (ims-vcr stores {:?} in its place)",
            credentials::PLACEHOLDER
        ));
    }
    validate_headers(&request.headers)?;
    validate_body(&request.body)?;
    if let Some(body) = &request.body {
        let bytes = body.to_bytes().map_err(|e| format!("body: {e}"))?;
        let content_type = crate::model::headers::value_of(&request.headers, "content-type");
        // A compressed body (what the leak gate refuses to store when a client gzips its
        // sign-in) is read through every layer; one in a coding ims-vcr cannot read is never
        // stored, so a cassette holding one was not written by ims-vcr and cannot be checked.
        if let Some(coding) = crate::secrets::exposure::unreadable_request_coding(request) {
            return Err(format!(
                "body: it is sent with `Content-Encoding: {coding}`, which ims-vcr cannot read, \
                 so it cannot be checked for credentials (ims-vcr never stores such a body)"
            ));
        }
        let inner = crate::secrets::exposure::innermost(&request.body);
        // A file (an image's data) is read as a script or cloud-config too, as the gate reads it.
        let file = crate::model::headers::holds_file_bytes(&request.headers);
        let script = |bytes: &[u8]| file.then(|| crate::secrets::exposure::script_credentials(bytes, "request")).flatten();
        let found = std::iter::once(&bytes[..])
            .chain(inner.as_deref())
            .filter_map(|bytes| credentials::mask_body(bytes, content_type).or_else(|| script(bytes)))
            .map(|(_, found)| found)
            .next();
        if let Some(found) = found
            && let Some(first) = found.first()
        {
            return Err(format!(
                "body: the {} carries credentials and must not be in a cassette (ims-vcr stores \
                 {:?} in its place)",
                first.label.trim_start_matches("credential "),
                credentials::PLACEHOLDER
            ));
        }
    }
    Ok(())
}

/// The longest recorded latency accepted, in milliseconds: a year, the longest upstream timeout
/// (`--upstream-timeout`) there is. Anything longer was not measured.
pub const MAX_LATENCY_MS: u64 = 365 * 24 * 3600 * 1000;

pub(crate) fn validate_response(response: &RecordedResponse) -> std::result::Result<(), String> {
    if !(200..=599).contains(&response.status) {
        return Err(format!(
            "status: {} is not in 200..=599 (a recorded answer is a final one)",
            response.status
        ));
    }
    let origins = std::iter::once(("upstream".to_owned(), &response.upstream)).chain(
        (response.other_upstreams.iter().enumerate())
            .map(|(i, origin)| (format!("other_upstreams[{i}]"), origin)),
    );
    for (field, origin) in origins {
        if credentials::userinfo_of(origin).is_some() {
            return Err(format!(
                "{field}: it carries credentials (user information, `user:password@`), which \
                 are never stored"
            ));
        }
        if !origin.is_empty() && !is_origin(origin) {
            return Err(format!(
                "{field}: {:?} is not an origin (`https://host[:port]` or `http://host[:port]`, \
                 nothing after it): replay points what the answer says of it at the proxy",
                credentials::shown_url(origin)
            ));
        }
    }
    crate::replay::timeshift::check_recorded_at(&response.recorded_at)
        .map_err(|e| format!("recorded_at: {e}"))?;
    if response.latency_ms > MAX_LATENCY_MS {
        return Err(format!(
            "latency_ms: {} is longer than any upstream timeout (at most {MAX_LATENCY_MS}, a year)",
            response.latency_ms
        ));
    }
    validate_headers(&response.headers)?;
    // A length is digits: one that is not would be left out when served (a `HEAD`'s is kept).
    let lengths = response.headers.iter().enumerate();
    for (i, (_, value)) in lengths.filter(|(_, (name, _))| name.eq_ignore_ascii_case("content-length")) {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.parse::<u64>().is_err() {
            return Err(format!("headers[{i}]: Content-Length {value:?} is not a length (a number of bytes)"));
        }
    }
    validate_body(&response.body)?;
    check_not_encoded(response)?;
    // What an answer hands out is masked when recorded (the leak gate's masking): in a JSON
    // answer, and in a text one (a form, JSON after a byte-order mark).
    use crate::model::answer_secrets::{mask_answer_json, may_hold_answer_secrets};
    let found = match &response.body {
        Some(crate::model::interaction::Body::Text(text)) => text_answer_secrets(text),
        // Bytes that are text after all (base64 of JSON, say) are checked as text.
        Some(body @ crate::model::interaction::Body::Base64(_)) => body
            .to_bytes()
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .map(|text| text_answer_secrets(&text))
            .unwrap_or_default(),
        body => match body.as_ref().and_then(|b| b.json()) {
            Some(json) if may_hold_answer_secrets(json) => {
                mask_answer_json(&mut json.clone(), &str::to_owned)
            }
            _ => Vec::new(),
        },
    };
    // And what it stands for when compressed, UTF-16 or Latin-1 (the leak gate reads them so,
    // and refuses such an answer handing something out, as it cannot mask it there).
    let found = match found.is_empty() {
        true => crate::secrets::exposure::innermost(&response.body)
            .and_then(|inner| String::from_utf8(inner).ok())
            .map(|text| text_answer_secrets(&text))
            .unwrap_or_default(),
        false => found,
    };
    // A file an answer brings (an image's data) setting passwords as a script or cloud-config.
    let found = match found.is_empty() && crate::model::headers::holds_file_bytes(&response.headers) {
        true => crate::secrets::exposure::file_script_credentials(&response.body, "answer").unwrap_or_default(),
        false => found,
    };
    if let Some(first) = found.first() {
        return Err(format!(
            "body: the {} carries credentials and must not be in a cassette (ims-vcr stores {:?} \
             in its place)",
            first.label.trim_start_matches("credential "),
            credentials::PLACEHOLDER
        ));
    }
    Ok(())
}

/// What a text answer hands out: as JSON when it parses as JSON (a text body an older ims-vcr
/// or a hand-edited cassette holds), else as [`mask_answer_text`] reads text.
pub(crate) fn text_answer_secrets(text: &str) -> Vec<credentials::Found> {
    use crate::model::answer_secrets::{mask_answer_json, mask_answer_text};
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut json) => mask_answer_json(&mut json, &str::to_owned),
        Err(_) => mask_answer_text(text).map(|(_, found)| found).unwrap_or_default(),
    }
}

/// Whether `text` is an origin: `http://` or `https://`, a host, maybe a port, nothing else.
fn is_origin(text: &str) -> bool {
    let Some(authority) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'));
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

fn validate_headers(headers: &[(String, String)]) -> std::result::Result<(), String> {
    for (i, (name, value)) in headers.iter().enumerate() {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("headers[{i}]: {name:?} is not a valid header name"))?;
        HeaderValue::from_str(value).map_err(|_| {
            format!("headers[{i}]: the value of {name:?} is not a valid header value")
        })?;
        if crate::model::headers::is_credential(name) {
            return Err(format!(
                "headers[{i}]: {name:?} carries credentials and must not be in a cassette"
            ));
        }
        if crate::model::params::mask_header_value(value).is_some() {
            return Err(format!(
                "headers[{i}]: the value of {name:?} carries credentials (in a URL or a \
                 `;name=value` parameter), which must not be in a cassette (ims-vcr stores {:?} in \
                 their place)",
                credentials::PLACEHOLDER
            ));
        }
    }
    Ok(())
}

/// An answer's body is stored decoded, so a `Content-Encoding` it keeps describes nothing and is
/// left out when it is read ([`without_content_encoding`]). A body that may still be encoded
/// under such a header (other than `identity`) is refused: gzip's magic bytes, or bytes that
/// are not UTF-8 text (zlib, brotli, zstd, raw deflate). Served as it
/// is it would reach the client undecoded, and the leak gate cannot read inside it.
fn check_not_encoded(response: &RecordedResponse) -> std::result::Result<(), String> {
    let bytes = crate::model::interaction::body_bytes(&response.body).unwrap_or_default();
    let stored = "a cassette stores the body decoded (ims-vcr encodes nothing it serves)";
    check_encoding(&response.headers, &bytes, stored, false)
}

/// [`check_not_encoded`] for a HAR entry: its `content.text` is decoded (base64 for bytes that
/// are not text), so an image served gzip-encoded is decoded binary there, not an encoded body.
/// Only what shows it is still encoded is refused: gzip's magic bytes, or a zlib stream (what
/// the leak gate would read through, [`crate::secrets::exposure::inflate`]).
pub(crate) fn check_decoded_har(
    headers: &[(String, String)],
    body: &[u8],
) -> std::result::Result<(), String> {
    check_encoding(headers, body, "a HAR's content.text holds the body decoded", true)
}

/// The check itself: `stored` says how the source keeps bodies, for the message (which names
/// the header by its index); `by_magic_only` refuses only bytes that show they are encoded.
fn check_encoding(
    headers: &[(String, String)],
    body: &[u8],
    stored: &str,
    by_magic_only: bool,
) -> std::result::Result<(), String> {
    let Some((i, (name, value))) = headers.iter().enumerate().find(|(_, (n, v))| {
        n.eq_ignore_ascii_case("content-encoding")
            && !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "identity")
    }) else {
        return Ok(());
    };
    // gzip's magic bytes are text-like enough to check apart; a zlib or brotli stream is never
    // UTF-8 text in practice, while plain text may start like a zlib header (`x^`).
    let gzip = body.starts_with(&[0x1f, 0x8b]);
    let still_encoded = match by_magic_only {
        true => gzip || crate::model::encodings::inflate(body).is_some(),
        false => gzip || std::str::from_utf8(body).is_err(),
    };
    if still_encoded {
        return Err(format!(
            "headers[{i}]: {name}: {value:?} over a body that may still be encoded (compressed \
             bytes, or not UTF-8 text); {stored}: decode the body and remove the header"
        ));
    }
    Ok(())
}

/// A redaction stamp as ims-vcr writes one: `key_fingerprint` is `hmac-sha256:` and 16 hex
/// digits, each pseudonym check 8 hex digits. Anything else was not written by a redaction, and
/// `verify --require-redaction` must not take it for one.
pub(crate) fn validate_stamp(stamp: &crate::secrets::redact::RedactionStamp) -> std::result::Result<(), String> {
    let hex = |text: &str, digits: usize| text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit());
    let fingerprint = &stamp.key_fingerprint;
    if !fingerprint.strip_prefix("hmac-sha256:").is_some_and(|digits| hex(digits, 16)) {
        return Err(format!(
            "key_fingerprint`: {fingerprint:?} is not a redaction key's fingerprint (`hmac-sha256:` and 16 hex digits)"
        ));
    }
    for (i, check) in stamp.pseudonym_checks.iter().flatten().enumerate() {
        if !hex(check, 8) {
            return Err(format!("pseudonym_checks[{i}]`: {check:?} is not 8 hex digits"));
        }
    }
    Ok(())
}

/// `headers` without `Content-Encoding`: an answer's body is stored decoded (see
/// [`check_not_encoded`]), and the proxy frames what it serves.
pub(crate) fn without_content_encoding(headers: &mut Vec<(String, String)>) {
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-encoding"));
}

/// The headers of a cassette's answer to a `method` request as a recording stores them: without
/// `Content-Encoding` ([`without_content_encoding`]), hop-by-hop headers (`Connection`,
/// `Transfer-Encoding`, …) and a `Content-Length` but a `HEAD`'s (the size of what a `GET`
/// brings, which clients size downloads by): the proxy frames what it serves, so a hand-written
/// cassette's framing would only be left out when served and kept in the store.
pub(crate) fn as_stored_answer_headers(method: &str, headers: &mut Vec<(String, String)>) {
    without_content_encoding(headers);
    let head = method.eq_ignore_ascii_case("HEAD");
    headers.retain(|(name, _)| {
        let name = name.to_ascii_lowercase();
        !crate::model::headers::is_hop_by_hop(&name) && (head || name != "content-length")
    });
}

fn validate_body(body: &Option<crate::model::interaction::Body>) -> std::result::Result<(), String> {
    crate::model::interaction::body_bytes(body)
        .map(|_| ())
        .map_err(|e| format!("body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interaction::Body;

    fn answer(body: Body, upstream: &str) -> RecordedResponse {
        let mut response = crate::model::fixtures::status_answer(&crate::model::fixtures::get("/x"), "ok").response;
        response.body = Some(body);
        response.upstream = upstream.to_owned();
        response
    }

    #[test]
    fn an_answer_holding_a_credential_as_text_or_base64_or_an_upstream_that_is_no_origin_is_refused() {
        use base64::Engine as _;
        let token = r#"{"access_token": "t-text-1"}"#;
        let deep = format!("{}{token}{}", "[".repeat(140), "]".repeat(140));
        for body in [
            Body::Text(token.to_owned()),
            Body::Text(format!("{token}\n{token}\n")),
            Body::Text(deep),
            Body::Base64(base64::engine::general_purpose::STANDARD.encode(token)),
        ] {
            let e = validate_response(&answer(body.clone(), "")).unwrap_err();
            assert!(e.contains("access_token of the answer body carries credentials"), "{body:?}: {e}");
        }
        for bad in ["a", "https://", "https://h/?token=t-1", "https://h/x", "ftp://h", "https://h:0", "https://h:99999"] {
            let e = validate_response(&answer(Body::Text("{}".into()), bad)).unwrap_err();
            assert!(e.starts_with("upstream: ") && e.contains("is not an origin"), "{bad}: {e}");
            assert!(!e.contains("t-1"), "{e}");
        }
        for good in ["", "https://ims.example", "http://127.0.0.1:8080", "https://[::1]:443"] {
            validate_response(&answer(Body::Text("{}".into()), good)).unwrap();
        }
    }

    #[test]
    fn an_informational_status_or_a_recording_time_in_the_future_is_refused() {
        let mut informational = answer(Body::Text("{}".into()), "");
        informational.status = 101;
        let e = validate_response(&informational).unwrap_err();
        assert!(e.starts_with("status: 101 is not in 200..=599"), "{e}");
        let mut future = answer(Body::Text("{}".into()), "");
        future.recorded_at = "9999-12-31T00:00:00Z".into();
        let e = validate_response(&future).unwrap_err();
        assert!(e.starts_with("recorded_at: \"9999-12-31T00:00:00Z\" is in the future"), "{e}");
        future.recorded_at = "2026-01-01T00:00:00Z".into();
        validate_response(&future).unwrap();
    }

    #[test]
    fn an_image_file_setting_passwords_as_a_script_does_is_refused_and_json_text_is_not_read_so() {
        let script = "#!/bin/sh\necho 'root:ShChp-333' | chpasswd\n";
        let octet = vec![("content-type".to_owned(), "application/octet-stream".to_owned())];
        let mut download = answer(Body::Text(script.into()), "");
        download.headers = octet.clone();
        let e = validate_response(&download).unwrap_err();
        assert!(e.contains("chpasswd") && e.contains("answer body"), "{e}");
        let mut upload = crate::model::fixtures::get("/v2/images/x/file");
        upload.method = "PUT".into();
        upload.headers = octet;
        upload.body = Some(Body::Text(script.into()));
        let e = validate_request(&upload).unwrap_err();
        assert!(e.contains("chpasswd"), "{e}");
        // The same words in an answer that is no file are text, not a script.
        validate_response(&answer(Body::Text(format!("{{\"note\": {script:?}}}")), "")).unwrap();
        // In a file: YAML `name: value` lines are read only in a cloud-config, and a shell
        // variable or a template is no password.
        let octet = vec![("content-type".to_owned(), "application/octet-stream".to_owned())];
        for data in [
            "kind: Pod\nspec:\n  secretName: db-creds\n",
            "#!/bin/sh\necho \"$U:$P\" | chpasswd\necho \"${PW}\" | passwd --stdin root\n",
        ] {
            let mut file = answer(Body::Text(data.into()), "");
            file.headers = octet.clone();
            validate_response(&file).unwrap_or_else(|e| panic!("{data:?}: {e}"));
        }
        let mut cloud_config = answer(Body::Text("#cloud-config\npassword: Cc-Plain-555\n".into()), "");
        cloud_config.headers = octet;
        let e = validate_response(&cloud_config).unwrap_err();
        assert!(e.contains("password"), "{e}");
    }
}
