//! A forwarding failure, kept as data until it is rendered as the client's answer: the `502`s
//! of an upstream that gave no usable answer or a path under no route, and the refusals of a
//! request the proxy must not forward as it stands (a replay placeholder token as a
//! credential, a page's request the proxy would sign).

use super::*;
use crate::net::routes::Routes;
use crate::net::upstream::{Upstream, UpstreamError};

/// A forwarding failure, kept as data until it is rendered as the client's `502`.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(super) status: StatusCode,
    /// How the metrics and `x-ims-vcr` count it: `upstream-error`, or `error` for a request the
    /// proxy refused to forward.
    pub(super) outcome: Outcome,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) details: Value,
}

impl Failure {
    /// The `502` for an upstream that gave no usable answer, logged. Its message names the
    /// upstream URL the request went to, with the request's credentials masked wherever they
    /// are in it (`secrets::shown`), not only in the parameters named for them.
    pub(super) fn upstream(e: &UpstreamError, parts: &Parts, body: &[u8]) -> Failure {
        let shown = crate::secrets::shown::Shown::of(parts, body);
        let message = shown.text(&e.to_string()).into_owned();
        tracing::warn!(kind = e.kind(), error = %message, "upstream failed; nothing recorded");
        Failure {
            status: StatusCode::BAD_GATEWAY,
            outcome: Outcome::UpstreamError,
            code: "IMS_VCR.UPSTREAM",
            message,
            details: json!({ "kind": e.kind() }),
        }
    }

    /// The `502` of a request that was not sent because an identical one sent at the same moment
    /// (`auto`'s shared exchange) found the upstream unreachable or hung (`kind`: `connect`,
    /// `timeout`). `line` is the request line as shown (credentials masked).
    pub(super) fn shared_unreachable(kind: &'static str, line: &str) -> Failure {
        let line = crate::model::access_keys::masked(line);
        let what = match kind {
            "timeout" => "gave no complete answer within --upstream-timeout",
            _ => "could not be reached",
        };
        Failure {
            status: StatusCode::BAD_GATEWAY,
            outcome: Outcome::UpstreamError,
            code: "IMS_VCR.UPSTREAM",
            message: format!(
                "the upstream {what} for an identical request sent at the same moment ({line}); \
                 this one was not sent again, as it would have waited as long"
            ),
            details: json!({ "kind": kind, "shared": true }),
        }
    }

    /// The `502` for a live answer that cannot be served again as it came.
    pub(super) fn invalid_answer(why: &str) -> Failure {
        Failure {
            status: StatusCode::BAD_GATEWAY,
            outcome: Outcome::UpstreamError,
            code: "IMS_VCR.UPSTREAM",
            message: format!("upstream answer cannot be replayed: {why}"),
            details: json!({ "kind": "invalid-answer" }),
        }
    }

    /// The `502` for a path under none of the proxy's routes, naming them; logged, as it is a
    /// set-up problem rather than an upstream's.
    pub(super) fn no_route(routes: &Routes, parts: &Parts, body: &[u8]) -> Failure {
        let path = crate::model::credentials::shown_path(parts.uri.path());
        let path = crate::secrets::shown::Shown::of(parts, body).text(&path).into_owned();
        let message = format!(
            "no route for {path}: the proxy forwards only paths under its routes ({}); add \
             --route PREFIX=URL (or --upstream URL for every other path)",
            routes.describe()
        );
        tracing::warn!("{message}");
        let listed: Vec<Value> = routes
            .iter()
            .map(|r| json!({"prefix": r.prefix(), "upstream": r.upstream().origin()}))
            .collect();
        Failure {
            status: StatusCode::BAD_GATEWAY,
            outcome: Outcome::UpstreamError,
            code: "IMS_VCR.NO_ROUTE",
            message,
            details: json!({ "kind": "no-route", "routes": listed }),
        }
    }

    /// The `403` for a request the proxy would sign with its own AK/SK that a web page could
    /// have sent (see [`crate::proxy::browser::signing_safe`]); logged, as the user should
    /// learn that a page tried, or that the client names the proxy in a way it refuses.
    pub(super) fn browser(why: String) -> Failure {
        tracing::warn!("{why}");
        Failure {
            status: StatusCode::FORBIDDEN,
            outcome: Outcome::Error,
            code: "IMS_VCR.FORBIDDEN",
            message: why,
            details: json!({ "kind": "browser-request" }),
        }
    }

    /// The `502` for a request carrying the placeholder token replay hands out for a recorded
    /// sign-in (`where_` names where: a header, a query parameter, a body field). The upstream
    /// would refuse it, and in `auto` or `record` that refusal would be stored as the request's
    /// answer and replayed from then on. So it is not forwarded, and the message says what to
    /// do in any mode: the client needs a live token.
    fn placeholder(where_: &str) -> Failure {
        use crate::model::headers::PLACEHOLDER_TOKEN;
        let message = format!(
            "not forwarded: {where_} carries {PLACEHOLDER_TOKEN}, the token replay serves in \
             place of a recorded sign-in's token, which the upstream would refuse (in record \
             and auto mode its 401 would be stored as this request's answer). The client needs \
             a live token: let its sign-in reach the upstream (record mode forwards every \
             sign-in; auto replays one that is recorded), and do not reuse a token a replay \
             handed out"
        );
        tracing::warn!("{message}");
        Failure {
            status: StatusCode::BAD_GATEWAY,
            outcome: Outcome::Error,
            code: "IMS_VCR.PLACEHOLDER_TOKEN",
            message,
            details: json!({ "kind": "placeholder-token", "where": where_ }),
        }
    }

    /// A request the proxy must not forward to `upstream` as it stands, if it is one: one
    /// carrying the placeholder token as a credential, or, when the proxy signs with its own
    /// AK/SK, one a web page could have sent.
    pub(super) fn refusing(
        proxy: &Proxy,
        routes: &Routes,
        upstream: &Upstream,
        parts: &Parts,
        body: &[u8],
    ) -> Option<Failure> {
        if let Some(where_) = placeholder_in(parts, body) {
            return Some(Failure::placeholder(&where_));
        }
        if !upstream.signs() {
            return None;
        }
        let hosts = routes.iter().map(|r| r.upstream().host());
        crate::proxy::browser::signing_safe(parts, proxy.settings.loopback_listener, hosts)
            .err()
            .map(Failure::browser)
    }

    pub(super) fn to_response(&self) -> Response<Full<Bytes>> {
        let mut response =
            error_response(self.status, self.code, &self.message, self.details.clone());
        response
            .headers_mut()
            .insert(OUTCOME_HEADER, self.outcome.header_value());
        response
    }
}

/// Where a request carries the placeholder token as a credential, if it does: a credential
/// header, or a credential query parameter or body field (a Keystone token sign-in's
/// `token.id`). Mentioned elsewhere (a note, a description) it is only text. The query and body
/// are read only when the placeholder's bytes are in them at all.
fn placeholder_in(parts: &Parts, body: &[u8]) -> Option<String> {
    use crate::model::headers::PLACEHOLDER_TOKEN;
    let holds = |bytes: &[u8]| memchr::memmem::find(bytes, PLACEHOLDER_TOKEN.as_bytes()).is_some();
    if let Some((name, _)) = parts
        .headers
        .iter()
        .find(|(name, value)| is_credential(name.as_str()) && holds(value.as_bytes()))
    {
        return Some(format!("header {name}"));
    }
    let in_found = |found: Vec<crate::model::credentials::Found>| {
        found
            .into_iter()
            .find(|f| holds(f.value.as_bytes()))
            .map(|f| f.label)
    };
    if let Some(query) = parts.uri.query().filter(|q| holds(q.as_bytes()))
        && let Some((_, found)) = crate::model::params::mask_query(query)
        && let Some(label) = in_found(found)
    {
        return Some(label);
    }
    if holds(body) {
        return in_found(crate::model::credentials::body_credentials(&parts.headers, body));
    }
    None
}
