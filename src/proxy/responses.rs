//! The proxy's own answers, as opposed to the upstream's or a recording's: JSON errors every
//! supported client reads (a miss, a refusal, an unreadable recording), and how an answer sent
//! before its request was read ends the connection.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use super::{MISS_REASON, MISS_STATUS};
use crate::net::outcome::{OUTCOME_HEADER, Outcome};

/// The answer replay gives a request sent with `x-ims-vcr-skip`: nothing was recorded for it,
/// and replay forwards nothing. `599 IMS_VCR.SKIPPED`, which is not a miss (`--fail-on-miss`
/// does not count it) and moves no playback cursor.
pub(super) fn skipped_in_replay(parts: &Parts, body: &[u8]) -> Response<Full<Bytes>> {
    let msg = format!(
        "{} {} was sent with {}, so it was not recorded, and replay forwards nothing; a test's \
         set-up and clean-up calls that must succeed in replay need their own recording",
        parts.method,
        shown_path(parts, body, None),
        crate::model::session::SKIP_HEADER
    );
    let status = StatusCode::from_u16(MISS_STATUS).expect("599 is a valid status code");
    // Not a miss, and not titled one (`error_response` titles a 599 so): a client shows
    // "Skipped".
    const SKIPPED: &str = "Skipped";
    let body = json!({
        "error": { "code": "IMS_VCR.SKIPPED", "message": msg, "title": SKIPPED },
        "ims_vcr": {},
    });
    let mut response = json_response(status, &body, Outcome::Error);
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(SKIPPED.as_bytes()));
    response
}

/// Marks an answer sent before the request's body was read with `Connection: close` (HTTP/1;
/// HTTP/2 only ends the stream): the connection cannot carry another request.
pub(super) fn closing(response: &mut Response<Full<Bytes>>, version: hyper::Version) {
    if version < hyper::Version::HTTP_2 {
        let close = HeaderValue::from_static("close");
        response.headers_mut().insert(hyper::header::CONNECTION, close);
    }
}

/// The `500 IMS_VCR.UNREADABLE` for recordings that cannot be read (a store entry or pack
/// answer that does not decode), with `why` naming what; `details` as in [`error_response`].
pub(crate) fn unreadable_response(why: &str, details: Value) -> Response<Full<Bytes>> {
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "IMS_VCR.UNREADABLE", why, details)
}

/// A JSON error every supported client turns into a readable error:
/// `{"error": {"code", "message", "title"}, "ims_vcr": {...}}`. Every top-level value is an
/// object, because python-glanceclient calls `.get("message")` on each of them (a top-level
/// string crashes it); the Huawei SDKs (Python and Go) read a nested `code`/`message`, and
/// openstacksdk joins the `message` of each top-level object. `details` must be an object too.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Value,
) -> Response<Full<Bytes>> {
    debug_assert!(details.is_object(), "{details}");
    let miss = status.as_u16() == MISS_STATUS;
    let title = match status.canonical_reason() {
        Some(reason) => reason,
        None if miss => MISS_REASON,
        None => "Error",
    };
    let body = json!({
        "error": { "code": code, "message": message, "title": title },
        "ims_vcr": details,
    });
    let mut response = json_response(status, &body, Outcome::Error);
    if miss {
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(MISS_REASON.as_bytes()));
    }
    response
}

/// A JSON answer marked with `outcome`.
pub(crate) fn json_response(
    status: StatusCode,
    body: &Value,
    outcome: Outcome,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(OUTCOME_HEADER, outcome.header_value());
    response
}

/// The request's path as a log line shows it: credential parameters masked (`;token=`), and
/// every credential value the request carries masked wherever else it is (`secrets::shown`),
/// and those of a refused exchange `answer` carries (what its answer handed out).
pub(super) fn shown_path(parts: &Parts, body: &[u8], answer: Option<&Response<Full<Bytes>>>) -> String {
    use crate::secrets::shown::Shown;
    let path = crate::model::credentials::shown_path(parts.uri.path());
    let path = Shown::of(parts, body).text(&path).into_owned();
    match answer.and_then(|a| a.extensions().get::<Arc<Shown>>()) {
        Some(refused) => refused.text(&path).into_owned(),
        None => path,
    }
}

/// The answer to a request no mode serves, if it is one: a tunnel asked for (`CONNECT`), a
/// target that is not a path (`*`), more than one `Host` (RFC 9112, 3.2: which one names the
/// server is anyone's guess), an `x-ims-vcr-skip` that says neither yes nor no. Nothing of it
/// is looked up, forwarded or recorded.
pub(super) fn refusal_of(parts: &Parts) -> Option<Response<Full<Bytes>>> {
    if parts.method == hyper::Method::CONNECT {
        // What a client sends when ims-vcr is set as its HTTPS_PROXY: say so.
        let target = shown_target(parts);
        let msg = format!(
            "CONNECT {target} asks for a tunnel, and ims-vcr is a reverse proxy, not a forward \
             one: point the client's endpoint (its base URL) at ims-vcr instead of setting \
             ims-vcr as its HTTPS_PROXY or HTTP_PROXY"
        );
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "IMS_VCR.METHOD_NOT_ALLOWED",
            &msg,
            json!({}),
        );
        response.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        return Some(response);
    }
    let refused = |msg: String| {
        Some(error_response(StatusCode::BAD_REQUEST, "IMS_VCR.BAD_REQUEST", &msg, json!({})))
    };
    if !parts.uri.path().starts_with('/') {
        // `*` (asterisk-form) names no resource; recorded, it would make a cassette that
        // import refuses.
        return refused(format!(
            "request target {:?} is not a path; ims-vcr serves paths starting with /",
            shown_target(parts)
        ));
    }
    if parts.headers.get_all(hyper::header::HOST).iter().nth(1).is_some() {
        return refused("the request has more than one Host header; send one".to_owned());
    }
    if let Err(why) = crate::model::session::skip_of(parts) {
        return refused(why);
    }
    None
}

/// A request's target as a refusal names it: its path as any request's is shown (credentials
/// masked; `*` as sent, also over HTTP/2), or for a target that names only a host
/// (`host:port`, authority-form) that host and port, never user information.
fn shown_target(parts: &Parts) -> String {
    match parts.uri.authority() {
        Some(authority) if parts.uri.path().is_empty() => match authority.port() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_owned(),
        },
        _ => shown_path(parts, &[], None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: hyper::Uri) -> Parts {
        hyper::Request::builder().uri(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_refusal_names_the_target_as_sent_or_the_host_it_names_never_a_credential() {
        let http2_asterisk =
            hyper::Uri::builder().scheme("http").authority("x").path_and_query("*").build().unwrap();
        for (uri, shown) in [
            (hyper::Uri::from_static("*"), "*"),
            (http2_asterisk, "*"),
            (hyper::Uri::from_static("example.com:443"), "example.com:443"),
            (hyper::Uri::from_static("/v2/images/x;token=Zq81secret"), "/v2/images/x;token=REDACTED"),
        ] {
            assert_eq!(shown_target(&parts(uri.clone())), shown, "{uri}");
        }
    }
}
