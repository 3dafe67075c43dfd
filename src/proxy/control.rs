//! The control API under `/__ims-vcr/` (never forwarded, never recorded): health, stats, misses,
//! cursor reset and the run-time mode switch. Loopback peers only, unless a token is configured
//! and sent in `x-ims-vcr-token`.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::net::outcome::{OUTCOME_HEADER, Outcome};
use crate::proxy::{CONTROL_PREFIX, Mode, Proxy, error_response, json_response};

/// Header carrying the control token (`--control-token` / `IMS_VCR_CONTROL_TOKEN`).
pub const TOKEN_HEADER: &str = "x-ims-vcr-token";

/// Whether a peer may use the control API: any loopback peer, or anyone presenting the token.
pub fn allowed(peer: IpAddr, presented: Option<&str>, token: Option<&str>) -> bool {
    let loopback = match peer {
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        IpAddr::V4(v4) => v4.is_loopback(),
    };
    // Compared as bytes of equal length only; a wrong token of the right length still fails.
    let token_ok = matches!((presented, token), (Some(p), Some(t)) if p.len() == t.len() && p.bytes().zip(t.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0);
    loopback || token_ok
}

/// Answers a control request.
pub(crate) fn handle(
    proxy: &Proxy,
    parts: &Parts,
    body: &[u8],
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let presented = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    if !allowed(peer.ip(), presented, proxy.control_token()) {
        let msg =
            format!("the control API answers loopback peers only, or peers sending {TOKEN_HEADER}");
        return error_response(StatusCode::FORBIDDEN, "IMS_VCR.FORBIDDEN", &msg, json!({}));
    }
    let route = parts.uri.path().trim_start_matches(CONTROL_PREFIX);
    let query = |name: &str| {
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match (&parts.method, route) {
        (&Method::GET, "health") => ok(json!({"status": "ok", "mode": proxy.mode()})),
        (&Method::GET, "stats") => ok(stats(proxy)),
        (&Method::GET, "metrics") => {
            let mut response = Response::new(Full::new(Bytes::from(proxy.metrics.render())));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response.headers_mut().insert(
                OUTCOME_HEADER,
                Outcome::Control.header_value(),
            );
            response
        }
        (&Method::GET, "misses") => ok(json!(proxy.misses())),
        (&Method::POST, "reset") => {
            let key = query("key");
            ok(json!({"reset": proxy.tapes.reset(key.as_deref())}))
        }
        (&Method::GET, "mode") => ok(json!({"mode": proxy.mode()})),
        (&Method::POST, "mode") => {
            let from_body = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["mode"].as_str().map(str::to_owned));
            let Some(wanted) = query("mode").or(from_body) else {
                let msg =
                    r#"say which mode: POST /__ims-vcr/mode?mode=auto or a body {"mode": "auto"}"#;
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "IMS_VCR.BAD_REQUEST",
                    msg,
                    json!({}),
                );
            };
            match wanted.parse::<Mode>().and_then(|m| proxy.set_mode(m)) {
                Ok(()) => ok(json!({"mode": proxy.mode()})),
                Err(e) => error_response(StatusCode::CONFLICT, "IMS_VCR.MODE", &e, json!({})),
            }
        }
        _ => {
            let msg = format!(
                "no control endpoint {} {}; try GET health, stats, metrics, misses, mode; POST reset, mode",
                parts.method,
                parts.uri.path()
            );
            error_response(StatusCode::NOT_FOUND, "IMS_VCR.NOT_FOUND", &msg, json!({}))
        }
    }
}

fn ok(body: Value) -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, &body, Outcome::Control)
}

fn stats(proxy: &Proxy) -> Value {
    let now = proxy.snapshot();
    json!({
        "mode": now.summary.mode,
        "hits": now.summary.hits,
        "misses": now.summary.miss_count(),
        "recorded": now.summary.recorded,
        "upstream_errors": now.summary.upstream_errors,
        "faults": now.faults,
        "unused": now.summary.unused.len(),
        "requests": now.requests.iter().map(|r| json!({
            "request": r.request, "key": r.key, "answers": r.answers, "played": r.played,
            "played_total": r.played_total, "recorded": r.recorded,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_or_the_token_may_use_the_control_api() {
        let lan: IpAddr = "192.0.2.10".parse().unwrap();
        for loopback in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
            assert!(allowed(loopback.parse().unwrap(), None, None), "{loopback}");
        }
        assert!(!allowed(lan, None, None));
        assert!(
            !allowed(lan, Some("guess"), None),
            "no token configured: nothing opens it"
        );
        assert!(!allowed(lan, None, Some("s3cret")));
        assert!(!allowed(lan, Some("s3creT"), Some("s3cret")));
        assert!(!allowed(lan, Some("s3cre"), Some("s3cret")));
        assert!(allowed(lan, Some("s3cret"), Some("s3cret")));
    }
}
