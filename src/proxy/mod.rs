//! The per-request flow: read the request, compute its key, then replay it, forward and record
//! it, or just forward it, by mode. This is the one place where the modes differ; every failure
//! becomes an HTTP answer.

pub mod control;
pub mod metrics;
pub mod realism;
pub mod settings;
pub mod telemetry;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::model::headers::{is_credential, is_hop_by_hop, is_volatile_request, to_pairs};
use crate::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse, now_rfc3339};
use crate::model::key::{MatchRules, RequestKey};
use crate::secrets::leak::Needle;
use crate::proxy::metrics::Metrics;
use crate::net::outcome::{OUTCOME_HEADER, Outcome};
use crate::replay::prepared::Prepared;
use crate::proxy::realism::FaultKind;
use crate::proxy::settings::Settings;
use crate::secrets::gate::Gate;
use crate::secrets::redact::{Redactor, credential_needles};
use crate::storage::store::Store;
use crate::replay::tape::{Play, Tapes, diff};
use crate::net::upstream::Upstream;

/// Status of a replay miss. 599 is outside every status IMS or a gateway sends, so no client can
/// take it for a recorded answer; the `x-ims-vcr: miss` header and the JSON body say the rest.
pub const MISS_STATUS: u16 = 599;
/// Requests under this path prefix go to the control API: never forwarded, never recorded.
pub const CONTROL_PREFIX: &str = "/__ims-vcr/";

/// What the proxy does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Forward everything, answer live, store each answer; a session replaces the earlier
    /// answers of each request it records.
    Record,
    /// Replay what is recorded; forward and record (append) what is not.
    Auto,
    /// Answer from recordings only; never open a connection upstream.
    Replay,
    /// Forward everything, store nothing.
    Passthrough,
}

impl Mode {
    /// Lower-case name, as in logs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Record => "record",
            Mode::Auto => "auto",
            Mode::Replay => "replay",
            Mode::Passthrough => "passthrough",
        }
    }

    /// True for the modes that need an upstream.
    pub fn forwards(self) -> bool {
        self != Mode::Replay
    }

    /// True for the modes that write the store.
    pub fn stores(self) -> bool {
        matches!(self, Mode::Record | Mode::Auto)
    }

    const ALL: [Mode; 4] = [Mode::Record, Mode::Auto, Mode::Replay, Mode::Passthrough];
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("unknown mode {s:?}: expected record, auto, replay or passthrough")
            })
    }
}

/// Forwarding state: where answers come from and where they go.
pub(crate) struct Recorder {
    pub(crate) upstream: Upstream,
    /// `None` when started in passthrough mode (no store is opened, nothing can be recorded).
    pub(crate) store: Option<Arc<Store>>,
    /// Redaction applied before storing (`--redact`), if any.
    pub(crate) redactor: Option<Redactor>,
    /// Secrets the leak gate always looks for: the proxy's own AK/SK and security token.
    pub(crate) secrets: Vec<Needle>,
}

/// A request that missed, for `misses`, the summary and `--fail-on-miss`.
#[derive(Clone, Debug, Serialize)]
pub struct Miss {
    /// Canonical request (method, path, canonical query; matched headers and body digest).
    pub request: String,
    /// How many times it was asked for.
    pub count: u64,
    /// The nearest recorded requests.
    pub nearest: Vec<String>,
    /// How it differs from the nearest one.
    pub diff: Vec<Value>,
}

/// Counters kept while serving.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Answers stored (hits and upstream errors are counted by [`Metrics`], per outcome).
    pub(crate) recorded: AtomicU64,
    pub(crate) faults: AtomicU64,
    /// Keyed by canonical request; only touched on a miss.
    pub(crate) misses: Mutex<BTreeMap<String, Miss>>,
}

/// What the proxy answers one forwarded exchange with (shared by single-flight waiters).
type Forwarded = Result<Prepared, Failure>;

/// A forwarding failure, kept as data so single-flight waiters can each render it.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl Failure {
    fn to_response(&self) -> Response<Full<Bytes>> {
        let mut response =
            error_response(self.status, self.code, &self.message, self.details.clone());
        response
            .headers_mut()
            .insert(OUTCOME_HEADER, Outcome::UpstreamError.header_value());
        response
    }
}

/// Everything a connection task needs to answer requests.
pub(crate) struct Proxy {
    /// The current [`Mode`], switchable at run time through the control API.
    mode: AtomicU8,
    pub(crate) rules: MatchRules,
    /// Recordings served on a hit; grows as record and auto modes record.
    pub(crate) tapes: Tapes,
    /// Present when started in a forwarding mode, so replay cannot reach an upstream by mistake.
    pub(crate) recorder: Option<Recorder>,
    pub(crate) stats: Stats,
    pub(crate) metrics: Metrics,
    /// Limits, realism and the control token, fixed at start-up.
    settings: Settings,
    /// Auto mode: concurrent identical misses wait on one upstream exchange. Held only to
    /// insert or remove an entry, never across an await.
    inflight: Mutex<HashMap<[u8; 32], Arc<OnceCell<Forwarded>>>>,
}

/// The connection is to be dropped without an answer (`--fault reset`).
#[derive(Debug)]
pub(crate) struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection (--fault reset)")
    }
}

impl std::error::Error for ResetConnection {}

impl Proxy {
    pub(crate) fn new(
        mode: Mode,
        rules: MatchRules,
        tapes: Tapes,
        recorder: Option<Recorder>,
        settings: Settings,
    ) -> Proxy {
        Proxy {
            mode: AtomicU8::new(mode as u8),
            rules,
            tapes,
            recorder,
            stats: Stats::default(),
            metrics: Metrics::default(),
            settings,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The token that lets non-loopback peers use the control API, if one is set.
    pub(crate) fn control_token(&self) -> Option<&str> {
        self.settings.control_token.as_deref()
    }

    /// The current mode.
    pub(crate) fn mode(&self) -> Mode {
        Mode::ALL[usize::from(self.mode.load(Ordering::Relaxed))]
    }

    /// Switches mode at run time; refused when the mode needs an upstream or a store this
    /// proxy was not started with.
    pub(crate) fn set_mode(&self, mode: Mode) -> Result<(), String> {
        let recorder = self.recorder.as_ref();
        if mode.forwards() && recorder.is_none() {
            return Err(format!(
                "cannot switch to {}: started without --upstream",
                mode.as_str()
            ));
        }
        if mode.stores() && recorder.is_some_and(|r| r.store.is_none()) {
            return Err(format!(
                "cannot switch to {}: started in passthrough mode, without a store",
                mode.as_str()
            ));
        }
        self.mode.store(mode as u8, Ordering::Relaxed);
        tracing::info!(mode = mode.as_str(), "mode switched");
        Ok(())
    }

    /// Answers one request. Errors are answers (an `Err` here drops the connection, which only
    /// an injected reset asks for).
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, ResetConnection> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        if !parts.uri.path().starts_with('/') {
            // `*` (asterisk-form) names no resource; recorded, it would make a cassette that
            // import refuses.
            let msg = format!(
                "request target {:?} is not a path; ims-vcr serves paths starting with /",
                parts.uri.to_string()
            );
            let response = error_response(
                StatusCode::BAD_REQUEST,
                "IMS_VCR.BAD_REQUEST",
                &msg,
                json!({}),
            );
            return Ok(self.log(&parts, started, response, Outcome::Error));
        }
        // Most requests (every GET) have no body: no timer, no collection.
        let body = if hyper::body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match Box::pin(self.read_body(body)).await {
                Ok(body) => body,
                Err(response) => return Ok(self.log(&parts, started, response, Outcome::Error)),
            }
        };
        if parts.uri.path().starts_with(CONTROL_PREFIX) {
            let response = crate::proxy::control::handle(self, &parts, &body, peer);
            return Ok(self.log(&parts, started, response, Outcome::Control));
        }
        match self.settings.realism.next_fault() {
            Some(FaultKind::Reset) => {
                self.stats.faults.fetch_add(1, Ordering::Relaxed);
                tracing::info!(method = %parts.method, path = parts.uri.path(), "fault injected: connection reset");
                return Err(ResetConnection);
            }
            Some(FaultKind::Unavailable) => {
                self.stats.faults.fetch_add(1, Ordering::Relaxed);
                let msg = "service unavailable (injected by ims-vcr --fault 503)";
                let mut response = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "IMS_VCR.FAULT",
                    msg,
                    json!({}),
                );
                response
                    .headers_mut()
                    .insert(OUTCOME_HEADER, Outcome::Fault.header_value());
                return Ok(self.log(&parts, started, response, Outcome::Fault));
            }
            None => {}
        }
        let (response, outcome) = self.answer(&parts, body).await;
        Ok(self.log(&parts, started, response, outcome))
    }

    /// Reads a request body within `--header-read-timeout` (408) and `--max-body` (413).
    async fn read_body(&self, body: Incoming) -> Result<Bytes, Response<Full<Bytes>>> {
        let collected = tokio::time::timeout(
            self.settings.body_read_timeout,
            Limited::new(body, self.settings.max_body).collect(),
        );
        let Ok(collected) = collected.await else {
            let msg = format!(
                "the request body did not arrive within {} s (--header-read-timeout)",
                self.settings.body_read_timeout.as_secs_f64()
            );
            return Err(error_response(
                StatusCode::REQUEST_TIMEOUT,
                "IMS_VCR.BODY_TIMEOUT",
                &msg,
                json!({}),
            ));
        };
        collected.map(|body| body.to_bytes()).map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                let msg = format!(
                    "request body is larger than {} bytes (--max-body)",
                    self.settings.max_body
                );
                error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "IMS_VCR.BODY_TOO_LARGE",
                    &msg,
                    json!({}),
                )
            } else {
                let msg = format!("could not read the request body: {e}");
                error_response(
                    StatusCode::BAD_REQUEST,
                    "IMS_VCR.BAD_REQUEST",
                    &msg,
                    json!({}),
                )
            }
        })
    }

    fn log(
        &self,
        parts: &Parts,
        started: Instant,
        response: Response<Full<Bytes>>,
        outcome: Outcome,
    ) -> Response<Full<Bytes>> {
        self.metrics
            .request(parts.uri.path(), outcome, started.elapsed());
        tracing::info!(
            mode = self.mode().as_str(),
            method = %parts.method,
            path = parts.uri.path(),
            status = response.status().as_u16(),
            outcome = outcome.as_str(),
            ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
            "request"
        );
        response
    }

    async fn answer(&self, parts: &Parts, body: Bytes) -> (Response<Full<Bytes>>, Outcome) {
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
        let mode = self.mode();
        let recorder = match (mode, &self.recorder) {
            (Mode::Replay, _) | (_, None) => return self.replay(parts, &body, &key).await,
            (_, Some(recorder)) => recorder,
        };
        match mode {
            Mode::Auto => {
                // One lookup: it advances the request's playback cursor.
                let played = self.lookup(parts, &body, &key);
                match played.prepared() {
                    Some(prepared) => (self.hit(parts, prepared).await, Outcome::Hit),
                    // Boxed, as below: forwarding futures are large, and every request's future
                    // (replay too) would otherwise be sized, and copied, for them.
                    None => Box::pin(self.single_flight(recorder, parts, body, &key)).await,
                }
            }
            _ => match Box::pin(self.forward(recorder, parts, body, &key, mode)).await {
                Ok(prepared) => {
                    let outcome = if mode == Mode::Record {
                        Outcome::Recorded
                    } else {
                        Outcome::Forwarded
                    };
                    (self.serve(&prepared, parts, outcome), outcome)
                }
                Err(failure) => (failure.to_response(), Outcome::UpstreamError),
            },
        }
    }

    /// The tape lookup: the request as sent, then (for redacted recordings) as it would have
    /// been stored, so clients sending real values match recordings holding pseudonyms.
    fn lookup(&self, parts: &Parts, body: &[u8], key: &RequestKey) -> Play {
        match self.tapes.play(key) {
            Play::Miss => {
                let Some(redactor) = self.tapes.redactor() else {
                    return Play::Miss;
                };
                let redacted = redactor.redact_request(&recorded_request(parts, body));
                match RequestKey::of_recorded(&self.rules, &redacted) {
                    Ok(k) if k != *key => self.tapes.play(&k),
                    _ => Play::Miss,
                }
            }
            other => other,
        }
    }

    async fn replay(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let played = self.lookup(parts, body, key);
        if let Play::Unreadable(why) = &played {
            tracing::error!(request = key.request_line(), "{why}");
            let response = error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "IMS_VCR.UNREADABLE",
                why,
                json!({"request": key.request_line()}),
            );
            return (response, Outcome::Error);
        }
        match played.prepared() {
            Some(prepared) => (self.hit(parts, prepared).await, Outcome::Hit),
            None => (
                self.miss(parts, body, key, matches!(played, Play::Exhausted(_))),
                Outcome::Miss,
            ),
        }
    }

    /// Serves a recorded answer, after the configured latency.
    async fn hit(&self, parts: &Parts, prepared: &Prepared) -> Response<Full<Bytes>> {
        let delay = self.settings.realism.delay(prepared.latency());
        if !delay.is_zero() {
            // Boxed: a `Sleep` in every request's future would be copied with it.
            Box::pin(tokio::time::sleep(delay)).await;
        }
        self.serve(prepared, parts, Outcome::Hit)
    }

    fn miss(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
        exhausted: bool,
    ) -> Response<Full<Bytes>> {
        let nearest = self.tapes.nearest(key, 3);
        let lines: Vec<String> = nearest.iter().map(|t| t.line().to_owned()).collect();
        let differences = nearest
            .first()
            .map(|tape| diff(&self.rules, &recorded_request(parts, body), tape))
            .unwrap_or_default();
        tracing::warn!(request = key.request_line(), nearest = ?lines, "replay miss: no recording matches");
        let entry = {
            let mut misses = self
                .stats
                .misses
                .lock()
                .expect("no code panics while holding the misses lock");
            let miss = misses
                .entry(key.canonical().to_owned())
                .or_insert_with(|| Miss {
                    request: key.canonical().to_owned(),
                    count: 0,
                    nearest: lines.clone(),
                    diff: differences.clone(),
                });
            miss.count += 1;
            miss.count
        };
        let msg = if exhausted {
            format!(
                "ims-vcr served every recorded answer for {} (--sequence strict); reset the cursors with POST {CONTROL_PREFIX}reset",
                key.request_line()
            )
        } else {
            format!(
                "ims-vcr has no recording for {} (replay never contacts the upstream); record it, or fix the request",
                key.request_line()
            )
        };
        let status = StatusCode::from_u16(MISS_STATUS).expect("599 is a valid status code");
        let details = json!({
            "request": key.canonical(),
            "reason": if exhausted { "sequence-exhausted" } else { "not-recorded" },
            "nearest": lines,
            "diff": differences,
            "count": entry,
        });
        let mut response = error_response(status, "IMS_VCR.MISS", &msg, details);
        response
            .headers_mut()
            .insert(OUTCOME_HEADER, Outcome::Miss.header_value());
        response
    }

    /// Auto-mode miss: the first of N concurrent identical misses forwards and records; the
    /// others wait for and serve its answer.
    async fn single_flight(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        key: &RequestKey,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let cell = {
            let mut inflight = self
                .inflight
                .lock()
                .expect("no code panics while holding the inflight lock");
            inflight.entry(*key.digest()).or_default().clone()
        };
        let mut leader = false;
        let forwarded = cell
            .get_or_init(|| {
                leader = true;
                self.forward(recorder, parts, body, key, Mode::Auto)
            })
            .await;
        if leader {
            self.inflight
                .lock()
                .expect("no code panics while holding the inflight lock")
                .remove(key.digest());
        }
        match forwarded {
            Ok(prepared) if leader => (self.serve(prepared, parts, Outcome::Recorded), Outcome::Recorded),
            Ok(prepared) => (self.serve(prepared, parts, Outcome::Hit), Outcome::Hit),
            Err(failure) => (failure.to_response(), Outcome::UpstreamError),
        }
    }

    /// Forwards one request; in record and auto modes stores the answer and adds it to the
    /// tapes. Returns what to serve, or the 502 to send.
    async fn forward(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        key: &RequestKey,
        mode: Mode,
    ) -> Forwarded {
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let live = match recorder
            .upstream
            .forward(&parts.method, path_and_query, &parts.headers, body.clone())
            .await
        {
            Ok(live) => {
                self.metrics.upstream(live.latency);
                live
            }
            Err(e) => {
                tracing::warn!(kind = e.kind(), error = %e, "upstream failed; nothing recorded");
                return Err(Failure {
                    status: StatusCode::BAD_GATEWAY,
                    code: "IMS_VCR.UPSTREAM",
                    message: e.to_string(),
                    details: json!({ "kind": e.kind() }),
                });
            }
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
        // `Body::from_bytes` stands for exactly these bytes, so they need no encoding again.
        let prepared =
            Prepared::with_body(&interaction.response, live.body.clone()).map_err(|e| Failure {
                status: StatusCode::BAD_GATEWAY,
                code: "IMS_VCR.UPSTREAM",
                message: format!("upstream answer cannot be replayed: {e}"),
                details: json!({ "kind": "invalid-answer" }),
            })?;
        if mode.stores()
            && let Some(store) = &recorder.store
        {
            let replace = mode == Mode::Record;
            if let Some((stored_key, seq)) = self
                .persist(recorder, store, parts, &interaction, replace)
                .await
            {
                self.stats.recorded.fetch_add(1, Ordering::Relaxed);
                // Looked up by the request as sent; read back from where the store keeps it
                // (another key when redaction changed the request).
                self.tapes.record_stored(key, &stored_key, store, seq);
            }
        }
        Ok(prepared)
    }

    /// Redacts (when configured), runs the leak gate, and stores. Returns the key the answer was
    /// stored under and its position among that request's answers, or `None` when it was not
    /// stored. A failure here never changes the client's answer: it is logged as an error
    /// naming what was refused and why.
    async fn persist(
        &self,
        recorder: &Recorder,
        store: &Store,
        parts: &Parts,
        interaction: &Interaction,
        replace: bool,
    ) -> Option<(RequestKey, u32)> {
        let line = format!(
            "{} {}",
            interaction.request.method, interaction.request.path
        );
        let mut needles = credential_needles(&parts.headers);
        needles.extend(recorder.secrets.iter().cloned());
        let gate = Gate::new(recorder.redactor.as_ref(), &self.rules);
        let passed = match gate.pass(interaction, needles) {
            Ok(passed) => passed,
            Err(refusal) => {
                tracing::error!(request = line, refused = %refusal, "answer served but NOT recorded");
                return None;
            }
        };
        if passed.redacted {
            self.metrics.redaction();
        }
        let result = store
            .record(&passed.key, &passed.interaction, replace)
            .await
            .map(|seq| (passed.key, seq));
        match result {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::error!(request = line, error = %e, "answer served but NOT recorded");
                None
            }
        }
    }

    /// Serves a prepared answer, pointing upstream URLs at the proxy when the answer has any.
    fn serve(
        &self,
        prepared: &Prepared,
        parts: &Parts,
        outcome: Outcome,
    ) -> Response<Full<Bytes>> {
        if !prepared.mentions_upstream() {
            return prepared.to_response(outcome, None);
        }
        let origin = proxy_authority(parts).map(|a| format!("{}://{a}", self.settings.scheme));
        prepared.to_response(outcome, origin.as_deref())
    }

    /// Misses recorded so far, by canonical request.
    pub(crate) fn misses(&self) -> Vec<Miss> {
        self.stats
            .misses
            .lock()
            .expect("no code panics while holding the misses lock")
            .values()
            .cloned()
            .collect()
    }

    /// Flushes the store at the end of a session, then brings its replay pack up to date, so
    /// the replays that follow start without reading the store. A pack that cannot be written
    /// only costs the next replay a slower start, so that failure is logged, not returned.
    pub(crate) async fn flush(&self) -> crate::Result<()> {
        let Some(store) = self.recorder.as_ref().and_then(|r| r.store.clone()) else {
            return Ok(());
        };
        store.flush().await?;
        let packed = tokio::task::spawn_blocking(move || store.replay_pack()).await;
        let failed = match packed {
            Ok(packed) => packed.err().map(|e| e.to_string()),
            Err(task) => Some(task.to_string()),
        };
        if let Some(error) = failed {
            tracing::warn!(%error, "cannot update the replay pack");
        }
        Ok(())
    }
}

/// The stored form of a live request: credentials, volatile and hop-by-hop headers left out.
pub(crate) fn recorded_request(parts: &Parts, body: &[u8]) -> RecordedRequest {
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

/// The authority the client used to reach the proxy (`Host`, or the HTTP/2 `:authority`), when
/// it is a valid authority.
fn proxy_authority(parts: &Parts) -> Option<hyper::http::uri::Authority> {
    match parts.uri.authority() {
        Some(authority) => Some(authority.clone()),
        None => parts
            .headers
            .get(hyper::header::HOST)?
            .to_str()
            .ok()?
            .parse()
            .ok(),
    }
}

/// A JSON error in the shapes IMS clients parse: `error_code`/`error_msg` (Huawei SDKs) and
/// `error.code`/`error.message` (OpenStack clients), plus ims-vcr's own details.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Value,
) -> Response<Full<Bytes>> {
    let body = json!({
        "error_code": code,
        "error_msg": message,
        "error": { "code": code, "message": message },
        "ims_vcr": details,
    });
    json_response(status, &body, Outcome::Error)
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
