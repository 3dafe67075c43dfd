//! The signature-verifying gateway (`tests/util/gateway.rs`) against requests the official
//! SDK signed (`tests/vectors/`) and requests `sign` signed, then tampered with: it accepts what
//! was signed and names what was changed.

use hyper::http::{self, HeaderMap, HeaderName, HeaderValue, Method, Uri};
use ims_vcr::net::signer::{Credentials, sign};
use serde_json::Value;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::util::gateway::{SDK_DATE_FORMAT, verify};

const VECTORS: &str = include_str!("vectors/signer_vectors.json");
const HEADER_SDK_DATE: &str = "x-sdk-date";
const HEADER_SECURITY_TOKEN: &str = "x-security-token";

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

fn parse_date(sdk_date: &str) -> OffsetDateTime {
    PrimitiveDateTime::parse(sdk_date, SDK_DATE_FORMAT)
        .unwrap()
        .assume_utc()
}

fn test_credentials() -> Credentials {
    Credentials {
        ak: "HPUATESTACCESSKEY001".to_owned(),
        sk: "test-secret-key-do-not-print".to_owned(),
        security_token: Some("test-security-token-do-not-print".to_owned()),
    }
}

/// A request signed by `sign` for the verify tests.
fn signed_request(body: &[u8]) -> (Method, Uri, HeaderMap) {
    let method = Method::POST;
    let uri: Uri = "/v2/cloudimages/action?id=abc".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    sign(
        &test_credentials(),
        &method,
        &uri,
        "ims.cn-north-4.myhuaweicloud.com",
        &mut headers,
        body,
        parse_date("20261127T080000Z"),
    );
    (method, uri, headers)
}

fn verify_test_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let creds = test_credentials();
    verify(&creds.ak, &creds.sk, method, uri, headers, body)
}

#[test]
fn verify_accepts_every_request_the_official_sdk_signed() {
    for vector in vectors() {
        let name = text(&vector, "name");
        let method = Method::from_bytes(text(&vector, "method").as_bytes()).unwrap();
        let uri: Uri = text(&vector, "path_and_query").parse().unwrap();
        let headers = header_map(&pairs(&vector["expected"]["wire_headers"]));
        let body = text(&vector, "body").as_bytes();
        let result = verify(
            text(&vector, "ak"),
            text(&vector, "sk"),
            &method,
            &uri,
            &headers,
            body,
        );
        assert_eq!(result, Ok(()), "{name}");
    }
}

#[test]
fn verify_accepts_a_request_signed_by_sign() {
    let body = br#"{"name":"copy"}"#;
    let (method, uri, headers) = signed_request(body);
    assert_eq!(verify_test_request(&method, &uri, &headers, body), Ok(()));
}

#[test]
fn verify_rejects_a_tampered_path() {
    let body = br#"{"name":"copy"}"#;
    let (method, _, headers) = signed_request(body);
    let tampered: Uri = "/v2/cloudimages/other?id=abc".parse().unwrap();
    assert_eq!(
        verify_test_request(&method, &tampered, &headers, body),
        Err("signature mismatch".to_owned())
    );
}

#[test]
fn verify_rejects_a_tampered_query() {
    let body = br#"{"name":"copy"}"#;
    let (method, _, headers) = signed_request(body);
    let tampered: Uri = "/v2/cloudimages/action?id=abd".parse().unwrap();
    assert_eq!(
        verify_test_request(&method, &tampered, &headers, body),
        Err("signature mismatch".to_owned())
    );
}

#[test]
fn verify_rejects_a_tampered_host() {
    let body = br#"{"name":"copy"}"#;
    let (method, uri, mut headers) = signed_request(body);
    headers.insert(
        http::header::HOST,
        HeaderValue::from_static("ims.evil.example"),
    );
    assert_eq!(
        verify_test_request(&method, &uri, &headers, body),
        Err("signature mismatch".to_owned())
    );
}

#[test]
fn verify_rejects_a_tampered_body() {
    let (method, uri, headers) = signed_request(br#"{"name":"copy"}"#);
    assert_eq!(
        verify_test_request(&method, &uri, &headers, br#"{"name":"evil"}"#),
        Err("signature mismatch".to_owned())
    );
}

#[test]
fn verify_rejects_an_unknown_access_key() {
    let (method, uri, headers) = signed_request(b"");
    let result = verify(
        "SOMEONEELSE",
        &test_credentials().sk,
        &method,
        &uri,
        &headers,
        b"",
    );
    assert_eq!(result, Err("unknown access key".to_owned()));
}

#[test]
fn verify_rejects_a_wrong_secret_key() {
    let (method, uri, headers) = signed_request(b"");
    let result = verify(
        &test_credentials().ak,
        "wrong-secret",
        &method,
        &uri,
        &headers,
        b"",
    );
    assert_eq!(result, Err("signature mismatch".to_owned()));
}

#[test]
fn verify_rejects_a_request_without_date_or_signature() {
    let (method, uri, mut headers) = signed_request(b"");
    headers.remove(HEADER_SDK_DATE);
    assert_eq!(
        verify_test_request(&method, &uri, &headers, b""),
        Err("missing X-Sdk-Date".to_owned())
    );
    headers.remove(http::header::AUTHORIZATION);
    assert_eq!(
        verify_test_request(&method, &uri, &headers, b""),
        Err("missing Authorization".to_owned())
    );
}

#[test]
fn verify_rejects_a_removed_signed_header() {
    let (method, uri, mut headers) = signed_request(b"");
    headers.remove(HEADER_SECURITY_TOKEN);
    assert_eq!(
        verify_test_request(&method, &uri, &headers, b""),
        Err("signed header x-security-token is missing".to_owned())
    );
}

#[test]
fn sign_replaces_a_clients_stale_authorization_and_date() {
    let creds = test_credentials();
    let uri: Uri = "/v2/images/abc".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static(
            "SDK-HMAC-SHA256 Access=OLDKEY, SignedHeaders=host;x-sdk-date, Signature=00",
        ),
    );
    headers.insert("X-Sdk-Date", HeaderValue::from_static("20200101T000000Z"));
    headers.insert(
        http::header::HOST,
        HeaderValue::from_static("127.0.0.1:9000"),
    );
    sign(
        &creds,
        &Method::GET,
        &uri,
        "ims.cn-north-4.myhuaweicloud.com",
        &mut headers,
        b"",
        parse_date("20261127T080000Z"),
    );
    assert_eq!(
        headers.get_all(http::header::AUTHORIZATION).iter().count(),
        1
    );
    assert_eq!(headers.get_all(HEADER_SDK_DATE).iter().count(), 1);
    assert_eq!(headers[HEADER_SDK_DATE], "20261127T080000Z");
    assert_eq!(
        headers[http::header::HOST],
        "ims.cn-north-4.myhuaweicloud.com"
    );
    assert!(
        headers[http::header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .starts_with("SDK-HMAC-SHA256 Access=HPUATESTACCESSKEY001, ")
    );
    assert_eq!(
        verify(&creds.ak, &creds.sk, &Method::GET, &uri, &headers, b""),
        Ok(())
    );
}
