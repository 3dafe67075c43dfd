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
use crate::proxy::browser::browser_safe;
use crate::proxy::{CONTROL_PREFIX, Mode, Proxy, error_response, json_response};

/// Header carrying the control token (`--control-token` / `IMS_VCR_CONTROL_TOKEN`).
pub const TOKEN_HEADER: &str = "x-ims-vcr-token";

/// Whether a peer may use the control API: any loopback peer, or anyone presenting the token.
pub fn allowed(peer: IpAddr, presented: Option<&str>, token: Option<&str>) -> bool {
    let loopback = crate::proxy::browser::loopback_ip(peer);
    // Compared as bytes of equal length only; a wrong token of the right length still fails.
    let token_ok = matches!((presented, token), (Some(p), Some(t)) if p.len() == t.len() && p.bytes().zip(t.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0);
    loopback || token_ok
}

/// Whether answering this control request reads every recording (stats, sessions, resets,
/// misses, metrics), so it waits for a store's index built behind serving; health and the mode
/// do not.
pub(crate) fn reads_every_recording(parts: &Parts) -> bool {
    !matches!(parts.uri.path().trim_start_matches(CONTROL_PREFIX), "health" | "mode")
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
    // A token holder is authenticated; a loopback peer may be a browser driven by a web page.
    let token_presented = presented.is_some() && proxy.control_token().is_some();
    if !token_presented && let Err(why) = browser_safe(parts) {
        return error_response(StatusCode::FORBIDDEN, "IMS_VCR.FORBIDDEN", &why, json!({}));
    }
    let route = parts.uri.path().trim_start_matches(CONTROL_PREFIX);
    let query = |name: &str| {
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    // HEAD reads what GET does (a health probe may use it); the server leaves the body out.
    let method = match &parts.method {
        &Method::HEAD => &Method::GET,
        method => method,
    };
    match (method, route) {
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
        (&Method::POST, "reset") => match query("key").map(|k| k.to_ascii_lowercase()) {
            // A request's key (`GET stats`), or its start: `ls` prints 12 hex digits of it.
            Some(key) if key.len() < 6 || !key.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let msg = format!(
                    "key {key:?} is no request key: give its hex digits (GET {CONTROL_PREFIX}stats \
                     lists them), or their first 6 or more (ls prints 12)"
                );
                error_response(StatusCode::BAD_REQUEST, "IMS_VCR.BAD_REQUEST", &msg, json!({}))
            }
            Some(key) => match proxy.tapes.reset(Some(&key)) {
                0 => {
                    let msg = format!("no recording has key {key} (GET {CONTROL_PREFIX}stats lists them)");
                    error_response(StatusCode::NOT_FOUND, "IMS_VCR.NOT_FOUND", &msg, json!({}))
                }
                reset => ok(json!({ "reset": reset })),
            },
            None => ok(json!({"reset": proxy.tapes.reset(None)})),
        },
        (&Method::GET, "mode") => ok(json!({"mode": proxy.mode()})),
        (&Method::GET, "sessions") => ok(json!({"sessions": proxy.session_list()})),
        (method, route) if route.starts_with("sessions/") => session(proxy, method, route),
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
            // An unknown mode is a bad request; a known one this proxy cannot take, a conflict.
            match wanted.parse::<Mode>() {
                Err(e) => error_response(StatusCode::BAD_REQUEST, "IMS_VCR.MODE", &e, json!({})),
                Ok(mode) => match proxy.set_mode(mode) {
                    Ok(()) => ok(json!({"mode": proxy.mode()})),
                    Err(e) => error_response(StatusCode::CONFLICT, "IMS_VCR.MODE", &e, json!({})),
                },
            }
        }
        _ => {
            let msg = format!(
                "no control endpoint {} {}; try GET health, stats, metrics, misses, mode, sessions, sessions/NAME/verdict; POST reset, mode, sessions/NAME/start|stop|reset",
                parts.method,
                parts.uri.path()
            );
            error_response(StatusCode::NOT_FOUND, "IMS_VCR.NOT_FOUND", &msg, json!({}))
        }
    }
}

/// `POST sessions/NAME/start`, `stop` and `reset`.
fn session(proxy: &Proxy, method: &Method, route: &str) -> Response<Full<Bytes>> {
    let rest = route.trim_start_matches("sessions/");
    let Some((name, action)) = rest.rsplit_once('/') else {
        let msg = format!("say what to do with session {rest:?}: POST {CONTROL_PREFIX}sessions/NAME/start, stop or reset");
        return error_response(StatusCode::NOT_FOUND, "IMS_VCR.NOT_FOUND", &msg, json!({}));
    };
    // Starting one is making a new session; the others also name sessions read from folders.
    let check = match action {
        "start" => crate::model::session::validate_new,
        _ => crate::model::session::validate,
    };
    if let Err(why) = check(name) {
        // A name of 60,000 characters is not echoed whole (nor twice: `why` may quote it).
        let cut = |text: &str| crate::error::elided(text.to_owned(), 240);
        let msg = format!("{CONTROL_PREFIX}sessions/{}/{action}: {}", cut(name), cut(&why));
        return error_response(StatusCode::BAD_REQUEST, "IMS_VCR.BAD_SESSION", &msg, json!({}));
    }
    // A name nothing knows (a typo in a harness) is no passing verdict, and stopping or
    // resetting it makes no session of it: 404, as for its verdict.
    let unknown = || !proxy.sessions.knows(name) && !proxy.tapes.session_names().iter().any(|n| n == name);
    if matches!(action, "verdict" | "stop" | "reset") && unknown() {
        let msg = format!("no session {name:?}: it made no request, has no listener and no recording");
        return error_response(StatusCode::NOT_FOUND, "IMS_VCR.NOT_FOUND", &msg, json!({}));
    }
    // The verdict so far, the session going on: what a test harness checks after a test's body
    // while its clean-up still uses the session.
    if action == "verdict" && (method == Method::GET || method == Method::POST) {
        return ok(json!(proxy.sessions.current(name, &proxy.tapes, proxy.settings.fail_on_unused)));
    }
    if method != Method::POST {
        let msg = format!("{CONTROL_PREFIX}sessions/{name}/{action} takes POST");
        return error_response(StatusCode::METHOD_NOT_ALLOWED, "IMS_VCR.METHOD", &msg, json!({}));
    }
    match action {
        "start" => match proxy.sessions.start(name) {
            Ok(url) => ok(json!({"session": name, "url": url})),
            Err(why) => error_response(StatusCode::SERVICE_UNAVAILABLE, "IMS_VCR.SESSION", &why, json!({})),
        },
        "stop" => ok(json!(proxy.stop_session(name))),
        "reset" => ok(json!({"session": name, "reset": proxy.sessions.reset(name, &proxy.tapes)})),
        _ => {
            let msg = format!("no session action {action:?}; POST {CONTROL_PREFIX}sessions/NAME/start, stop or reset, GET …/verdict");
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
        "not_stored": now.summary.not_stored,
        "refused": now.summary.refused,
        "upstream_errors": now.summary.upstream_errors,
        "faults": now.faults,
        "unused": now.summary.unused.len(),
        "requests": now.requests.iter().map(|r| {
            let mut entry = json!({
                "request": r.request, "key": r.key, "answers": r.answers, "played": r.played,
                "played_total": r.played_total, "recorded": r.recorded,
            });
            if let Some(session) = &r.session {
                entry["session"] = json!(session);
            }
            entry
        }).collect::<Vec<_>>(),
        "sessions": now.summary.sessions.len(),
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
