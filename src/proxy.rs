//! The per-request flow: read the request, compute its key, then replay it or forward and record
//! it. This is the one place where the modes differ; every failure becomes an HTTP answer.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::headers::{is_credential, is_hop_by_hop, is_volatile_request, to_pairs};
use crate::interaction::{Body, Interaction, RecordedRequest, RecordedResponse, now_rfc3339};
use crate::key::{MatchRules, RequestKey};
use crate::leak::Needle;
use crate::redact::{Redactor, credential_needles, find_leak};
use crate::store::Store;
use crate::tape::{OUTCOME_HEADER, Prepared, Tapes};
use crate::upstream::{Upstream, UpstreamError};

/// Status of a replay miss. 599 is outside every status IMS or a gateway sends, so no client can
/// take it for a recorded answer; the `x-ims-vcr: miss` header and the JSON body say the rest.
pub const MISS_STATUS: u16 = 599;
/// Default cap on a client request body (`--max-body`).
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

/// What the proxy does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the upstream, answer live, store the answer.
    Record,
    /// Answer from recordings only; never open a connection upstream.
    Replay,
}

impl Mode {
    /// Lower-case name, as in logs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Record => "record",
            Mode::Replay => "replay",
        }
    }
}

/// Record-mode state: where answers come from and where they go.
pub(crate) struct Recorder {
    pub(crate) upstream: Upstream,
    pub(crate) store: Arc<Store>,
    /// Redaction applied before storing (`--redact`), if any.
    pub(crate) redactor: Option<Redactor>,
    /// Secrets the leak gate always looks for: the proxy's own AK/SK and security token.
    pub(crate) secrets: Vec<Needle>,
}

/// Everything a connection task needs to answer requests.
pub(crate) struct Proxy {
    pub(crate) mode: Mode,
    pub(crate) rules: MatchRules,
    /// Recordings served in replay mode (empty in record mode).
    pub(crate) tapes: Tapes,
    /// Present in record mode only, so replay cannot reach an upstream even by mistake.
    pub(crate) recorder: Option<Recorder>,
    pub(crate) max_body: usize,
}

impl Proxy {
    /// Answers one request. Never fails: errors are answers (an `Err` would drop the connection).
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let (response, outcome) = match Limited::new(body, self.max_body).collect().await {
            Ok(body) => self.answer(&parts, body.to_bytes()).await,
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                let msg = format!(
                    "request body is larger than {} bytes (--max-body)",
                    self.max_body
                );
                (
                    error_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "IMS_VCR.BODY_TOO_LARGE",
                        &msg,
                        json!({}),
                    ),
                    "error",
                )
            }
            Err(e) => {
                let msg = format!("could not read the request body: {e}");
                (
                    error_response(
                        StatusCode::BAD_REQUEST,
                        "IMS_VCR.BAD_REQUEST",
                        &msg,
                        json!({}),
                    ),
                    "error",
                )
            }
        };
        tracing::info!(
            mode = self.mode.as_str(),
            method = %parts.method,
            path = parts.uri.path(),
            status = response.status().as_u16(),
            outcome,
            ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
            "request"
        );
        response
    }

    async fn answer(&self, parts: &Parts, body: Bytes) -> (Response<Full<Bytes>>, &'static str) {
        let key = RequestKey::new(
            &self.rules,
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
            |name| {
                parts
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect()
            },
            &body,
        );
        match (&self.recorder, self.mode) {
            (Some(recorder), Mode::Record) => self.record(recorder, parts, body).await,
            _ => self.replay(parts, &body, &key),
        }
    }

    fn replay(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
    ) -> (Response<Full<Bytes>>, &'static str) {
        let played = self.tapes.play(key).or_else(|| {
            // Recordings hold pseudonyms; a client sending real values matches once its request
            // is redacted the same way (same key).
            let redactor = self.tapes.redactor()?;
            let redacted = redactor.redact_request(&recorded_request(parts, body));
            self.tapes
                .play(&RequestKey::of_recorded(&self.rules, &redacted).ok()?)
        });
        match played {
            Some(prepared) => (serve(prepared, parts, "hit"), "hit"),
            None => (self.miss(key), "miss"),
        }
    }

    fn miss(&self, key: &RequestKey) -> Response<Full<Bytes>> {
        let nearest = self.tapes.nearest(key, 3);
        tracing::warn!(
            request = key.request_line(),
            ?nearest,
            "replay miss: no recording matches"
        );
        let msg = format!(
            "ims-vcr has no recording for {} (replay never contacts the upstream); record it, or fix the request",
            key.request_line()
        );
        let status = StatusCode::from_u16(MISS_STATUS).expect("599 is a valid status code");
        let details = json!({ "request": key.canonical(), "nearest": nearest });
        let mut response = error_response(status, "IMS_VCR.MISS", &msg, details);
        response
            .headers_mut()
            .insert(OUTCOME_HEADER, HeaderValue::from_static("miss"));
        response
    }

    async fn record(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
    ) -> (Response<Full<Bytes>>, &'static str) {
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let live = match recorder
            .upstream
            .forward(&parts.method, path_and_query, &parts.headers, body.clone())
            .await
        {
            Ok(live) => live,
            Err(e) => return (upstream_error(&e), "upstream-error"),
        };
        let interaction = Interaction {
            request: recorded_request(parts, &body),
            response: RecordedResponse {
                status: live.status.as_u16(),
                headers: to_pairs(&live.headers, |n| !is_credential(n)),
                body: Body::from_bytes(&live.body),
                recorded_at: now_rfc3339(),
                latency_ms: u64::try_from(live.latency.as_millis()).unwrap_or(u64::MAX),
                upstream: recorder.upstream.origin().to_owned(),
            },
            redaction: None,
        };
        // Serve exactly what replay will serve, built by the same code (but unredacted: the
        // client recording now gets the live values).
        let prepared = match Prepared::from_recorded(&interaction.response) {
            Ok(prepared) => prepared,
            Err(e) => {
                let msg = format!("upstream answer cannot be replayed: {e}");
                return (
                    error_response(StatusCode::BAD_GATEWAY, "IMS_VCR.UPSTREAM", &msg, json!({})),
                    "upstream-error",
                );
            }
        };
        self.persist(recorder, parts, interaction).await;
        (serve(&prepared, parts, "recorded"), "recorded")
    }

    /// Redacts (when configured), runs the leak gate, and stores. A failure here never changes
    /// the client's answer: it is logged as an error naming what was refused and why.
    async fn persist(&self, recorder: &Recorder, parts: &Parts, interaction: Interaction) {
        let line = format!(
            "{} {}",
            interaction.request.method, interaction.request.path
        );
        let mut needles = credential_needles(&parts.headers);
        needles.extend(recorder.secrets.iter().cloned());
        let stored = match &recorder.redactor {
            None => interaction,
            Some(redactor) => match redactor.redact(&interaction) {
                Ok((redacted, values)) => {
                    needles.extend(values);
                    redacted
                }
                Err(e) => {
                    tracing::error!(request = line, error = %e, "answer served but NOT recorded");
                    return;
                }
            },
        };
        if let Some(leak) = find_leak(&stored, needles) {
            tracing::error!(
                request = line,
                leaked = leak.label,
                encoding = leak.encoding,
                "answer served but NOT recorded: a secret is still in it after redaction (leak gate)"
            );
            return;
        }
        let key = match RequestKey::of_recorded(&self.rules, &stored.request) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(request = line, error = %e, "answer served but NOT recorded");
                return;
            }
        };
        if let Err(e) = recorder.store.record(&key, &stored).await {
            tracing::error!(request = line, error = %e, "answer served but NOT recorded");
        }
    }
}

/// The stored form of a live request: credentials, volatile and hop-by-hop headers left out.
fn recorded_request(parts: &Parts, body: &[u8]) -> RecordedRequest {
    RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
        headers: to_pairs(&parts.headers, |n| {
            !is_credential(n) && !is_volatile_request(n) && !is_hop_by_hop(n)
        }),
        body: Body::from_bytes(body),
    }
}

/// Serves a prepared answer, pointing upstream URLs at the proxy when the answer has any.
fn serve(prepared: &Prepared, parts: &Parts, outcome: &'static str) -> Response<Full<Bytes>> {
    if !prepared.mentions_upstream() {
        return prepared.to_response(outcome, None);
    }
    prepared.to_response(outcome, proxy_origin(parts).as_deref())
}

/// `http://` plus the authority the client used to reach the proxy (`Host`, or the HTTP/2
/// `:authority`), when it is a valid authority.
fn proxy_origin(parts: &Parts) -> Option<String> {
    let authority = match parts.uri.authority() {
        Some(a) => a.clone(),
        None => parts
            .headers
            .get(hyper::header::HOST)?
            .to_str()
            .ok()?
            .parse()
            .ok()?,
    };
    Some(format!("http://{authority}"))
}

/// A 502 naming what failed and where; nothing was stored.
fn upstream_error(error: &UpstreamError) -> Response<Full<Bytes>> {
    tracing::warn!(kind = error.kind(), error = %error, "upstream failed; nothing recorded");
    let mut response = error_response(
        StatusCode::BAD_GATEWAY,
        "IMS_VCR.UPSTREAM",
        &error.to_string(),
        json!({ "kind": error.kind() }),
    );
    response
        .headers_mut()
        .insert(OUTCOME_HEADER, HeaderValue::from_static("upstream-error"));
    response
}

/// A JSON error in the shapes IMS clients parse: `error_code`/`error_msg` (Huawei SDKs) and
/// `error.code`/`error.message` (OpenStack clients), plus ims-vcr's own details.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: serde_json::Value,
) -> Response<Full<Bytes>> {
    let body = json!({
        "error_code": code,
        "error_msg": message,
        "error": { "code": code, "message": message },
        "ims_vcr": details,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(OUTCOME_HEADER, HeaderValue::from_static("error"));
    response
}
