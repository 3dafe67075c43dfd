//! The signature-verifying gateway: what the fake IMS runs (as a [`Verifier`]) to check AK/SK
//! (`SDK-HMAC-SHA256`) signatures the way Huawei Cloud's API gateway does, and answer 401 on a bad
//! one. It rebuilds the canonical request and the string to sign with the library's own signer
//! helpers (`ims_vcr::net::signer`), which match the official SDK's (`tests/verifier.rs`).

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use hyper::http::{self, HeaderMap};
use ims_vcr::net::signer::{self, Credentials, canonical_request, string_to_sign};
use sha2::Sha256;
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::Verifier;

/// The gateway's AK/SK: the proxy's credentials in the re-signing tests.
pub const REAL_AK: &str = "HPUAREALACCESSKEY0001";
pub const REAL_SK: &str = "real-secret-key-0123456789abcdefghij";

const ALGORITHM: &str = "SDK-HMAC-SHA256";
const HEADER_SDK_DATE: &str = "x-sdk-date";
/// `%Y%m%dT%H%M%SZ`, the only X-Sdk-Date format the SDK writes or accepts.
pub const SDK_DATE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// A fake upstream that checks signatures like the API gateway: the real AK/SK, and a date within
/// 15 minutes of its own clock.
pub fn gateway_verifier() -> Verifier {
    Arc::new(|parts, body| {
        verify(
            REAL_AK,
            REAL_SK,
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
        )?;
        let date = parts
            .headers
            .get("x-sdk-date")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let signed = PrimitiveDateTime::parse(date, SDK_DATE_FORMAT)
            .map_err(|e| e.to_string())?
            .assume_utc();
        let skew = (time::OffsetDateTime::now_utc() - signed).abs();
        if skew > time::Duration::minutes(15) {
            return Err(format!(
                "X-Sdk-Date is {skew} away from the gateway's clock"
            ));
        }
        Ok(())
    })
}

/// [`REAL_AK`] and [`REAL_SK`] as the proxy reads them from the SDK's environment variables.
pub fn real_credentials() -> Credentials {
    Credentials::from_lookup(|name| match name {
        signer::ENV_AK => Some(REAL_AK.into()),
        signer::ENV_SK => Some(REAL_SK.into()),
        _ => None,
    })
    .unwrap()
    .unwrap()
}

/// Verifies an incoming signed request against a known AK/SK, as the API gateway does.
/// Returns Ok(()) or Err(reason string, e.g. "signature mismatch", "missing X-Sdk-Date", "unknown access key").
///
/// No clock-skew check: recorded requests are replayed long after they were signed. As with the
/// real gateway, a body sent with `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` is not covered.
pub fn verify(
    ak: &str,
    sk: &str,
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let authorization = parse_authorization(headers)?;
    if authorization.access != ak {
        return Err("unknown access key".to_owned());
    }
    let sdk_date = sdk_date_header(headers)?;
    check_signed_headers(headers, &authorization.signed_headers)?;
    // APIG's published signer reads the query with Go's `URL.Query()`: a bare `+` is a space
    // (escaped `%20` in the canonical form), where the SDK's canonical form reads it literally.
    let uri = match uri.query().filter(|query| query.contains('+')) {
        Some(query) => format!("{}?{}", uri.path(), query.replace('+', "%20"))
            .parse()
            .unwrap(),
        None => uri.clone(),
    };
    let canonical = canonical_request(method, &uri, headers, &authorization.signed_headers, body);
    let mut expected =
        Hmac::<Sha256>::new_from_slice(sk.as_bytes()).expect("HMAC accepts keys of any length");
    expected.update(string_to_sign(&canonical, sdk_date).as_bytes());
    let given = decode_hex(&authorization.signature).ok_or("signature is not hex")?;
    // verify_slice compares in constant time, as a real verifier must.
    expected
        .verify_slice(&given)
        .map_err(|_| "signature mismatch".to_owned())
}

/// The parts of `SDK-HMAC-SHA256 Access=…, SignedHeaders=a;b, Signature=…`.
struct Authorization {
    access: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(headers: &HeaderMap) -> Result<Authorization, String> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or("missing Authorization")?
        .to_str()
        .map_err(|_| "Authorization is not ASCII")?;
    let params = value
        .strip_prefix(ALGORITHM)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| format!("Authorization is not {ALGORITHM}"))?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("Access", v)) => access = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(format!("malformed Authorization parameter {param:?}")),
        }
    }
    let missing = |part: &str| format!("Authorization has no {part}");
    Ok(Authorization {
        access: access.ok_or_else(|| missing("Access"))?.to_owned(),
        signed_headers: signed
            .ok_or_else(|| missing("SignedHeaders"))?
            .split(';')
            .map(str::to_owned)
            .collect(),
        signature: signature.ok_or_else(|| missing("Signature"))?.to_owned(),
    })
}

fn sdk_date_header(headers: &HeaderMap) -> Result<&str, String> {
    let value = headers
        .get(HEADER_SDK_DATE)
        .ok_or("missing X-Sdk-Date")?
        .to_str()
        .map_err(|_| "X-Sdk-Date is not ASCII")?;
    // The SDK parses the date with strptime before signing; anything else never gets signed.
    PrimitiveDateTime::parse(value, SDK_DATE_FORMAT)
        .map_err(|_| format!("malformed X-Sdk-Date {value:?}"))?;
    Ok(value)
}

/// The date and host must be covered (otherwise a signature could be replayed at another time
/// or host), and every header claimed as signed must be present.
fn check_signed_headers(headers: &HeaderMap, signed: &[String]) -> Result<(), String> {
    for required in [HEADER_SDK_DATE, "host"] {
        if !signed.iter().any(|name| name == required) {
            return Err(format!("{required} is not signed"));
        }
    }
    match signed
        .iter()
        .find(|name| !headers.contains_key(name.as_str()))
    {
        Some(name) => Err(format!("signed header {name} is missing")),
        None => Ok(()),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
