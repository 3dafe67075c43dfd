//! The per-request flow: read the request, compute its key, then replay it, forward and record
//! it, or just forward it, by mode. This is the one place where the modes differ; every failure
//! becomes an HTTP answer.

mod at_once;
mod catalog;
pub mod browser;
pub mod control;
mod failure;
pub mod gaps;
mod keys;
mod passthrough;
mod playback;
mod record;
mod request_body;
mod responses;
mod sweep;
pub mod metrics;
pub mod realism;
pub mod sessions;
pub mod settings;
pub mod telemetry;

pub(crate) use at_once::AtOnce;
pub(crate) use record::Recorder;
pub(crate) use responses::{error_response, json_response, unreadable_response};
use responses::{closing, refusal_of, skipped_in_replay};
use record::Coalesced;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::model::headers::{
    is_credential, is_hop_by_hop, is_volatile_request, stable_response_headers, to_pairs,
};
use crate::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse, now_rfc3339};
use crate::model::key::{MatchRules, RequestKey};
use crate::secrets::leak::Needle;
use crate::proxy::metrics::Metrics;
use crate::net::outcome::{OUTCOME_HEADER, Outcome};
use crate::replay::prepared::Prepared;
use crate::proxy::realism::FaultKind;
use crate::proxy::sessions::Sessions;
use crate::proxy::settings::Settings;
use crate::model::session::{session_of, skip_of};
use crate::secrets::gate::Gate;
use crate::secrets::redact::{Redactor, credential_needles};
use crate::storage::store::Store;
use crate::net::routes::Routes;
use crate::replay::miss::diff;
use crate::replay::tape::{Play, Tapes};

/// Status of a replay miss. 599 is outside every status IMS or a gateway sends, so no client can
/// take it for a recorded answer; the `x-ims-vcr: miss` header and the JSON body say the rest.
pub const MISS_STATUS: u16 = 599;
/// How many distinct missed requests are kept (with their nearest recordings) for
/// `/__ims-vcr/misses` and the summary; further ones are only counted.
pub const MAX_TRACKED_MISSES: usize = 1000;
/// The reason phrase of [`MISS_STATUS`] on the HTTP/1 status line (599 has no standard one), and
/// the `title` of a miss's JSON error.
pub const MISS_REASON: &str = "Replay Miss";
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

/// A request that missed, for `misses`, the summary and `--fail-on-miss`.
#[derive(Clone, Debug, Serialize)]
pub struct Miss {
    /// Canonical request (method, path, canonical query; matched headers and body digest).
    pub request: String,
    /// The request's session; absent for the default session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// How many times it was asked for.
    pub count: u64,
    /// The nearest recorded requests.
    pub nearest: Vec<String>,
    /// The other sessions that recorded the request (`"suite/t1"`, `3 other sessions (…)`),
    /// when it missed in this one only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_in: Option<String>,
    /// How it differs from the nearest one.
    pub diff: Vec<Value>,
    /// It is recorded, and every recorded answer of it was served (`--sequence strict`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exhausted: bool,
}

/// Counters kept while serving.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Answers stored (hits and upstream errors are counted by [`Metrics`], per outcome).
    pub(crate) recorded: AtomicU64,
    /// Answers served live that the store failed to take (a full disk): lost to replay.
    pub(crate) not_stored: AtomicU64,
    /// Answers served live that the leak gate or redaction refused to store (replay serves a
    /// `599 IMS_VCR.NOT_RECORDED` gap in their place, where one could be stored).
    pub(crate) refused: AtomicU64,
    pub(crate) faults: AtomicU64,
    /// Keyed by canonical request; only touched on a miss. At most [`MAX_TRACKED_MISSES`].
    pub(crate) misses: Mutex<BTreeMap<String, Miss>>,
    /// Misses of requests not kept in `misses` because it was full.
    pub(crate) untracked_misses: AtomicU64,
}

/// Volatile values learnt in one session: (recorded value, live value) pairs.
type Substitutions = Vec<(String, String)>;

/// Everything a connection task needs to answer requests.
pub(crate) struct Proxy {
    /// The current [`Mode`], switchable at run time through the control API.
    mode: AtomicU8,
    pub(crate) rules: MatchRules,
    /// Recordings served on a hit; grows as record and auto modes record.
    pub(crate) tapes: Tapes,
    /// Present when started in a forwarding mode, so replay cannot reach an upstream by mistake.
    pub(crate) recorder: Option<Arc<Recorder>>,
    pub(crate) stats: Stats,
    pub(crate) metrics: Metrics,
    /// Named sessions' counters, verdicts and listeners.
    pub(crate) sessions: Sessions,
    /// Volatile values learnt per session (`None`: the default one): recorded value → live
    /// value. Only used with `--volatile`; held only to read or extend the list.
    volatile_values: Mutex<HashMap<Option<String>, Substitutions>>,
    /// Limits, realism and the control token, fixed at start-up.
    settings: Settings,
    /// Auto mode: concurrent identical misses wait on one upstream exchange, and learn from it
    /// only where its answer was stored, never the live answer (see [`Coalesced`]). Held only
    /// to insert or remove an entry, never across an await.
    inflight: Mutex<HashMap<[u8; 32], Arc<OnceCell<Coalesced>>>>,
    /// Builds request keys under `rules`, from this thread's memo when they allow it.
    keys: keys::Keys,
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
            keys: keys::Keys::new(&rules),
            rules,
            tapes,
            recorder: recorder.map(Arc::new),
            stats: Stats::default(),
            metrics: Metrics::default(),
            sessions: Sessions::default(),
            volatile_values: Mutex::new(HashMap::new()),
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
        // One read of the mode for the whole request.
        let mode = self.mode();
        let started = started_for(mode);
        let (mut parts, body) = request.into_parts();
        if let Some(mut response) = refusal_of(&parts) {
            if !hyper::body::Body::is_end_stream(&body) {
                closing(&mut response, parts.version);
            }
            return Ok(self.log(&parts, &[], started, response, Outcome::Error, None));
        }
        // The session, and the attempt of it the request comes in, before its body is read: a
        // session stopped while an upload streams must not count it in its next attempt. The
        // name is copied (requests of named sessions only) so the attempt can join the
        // request's extensions.
        let session = session_of(&parts).map(|name| name.map(str::to_owned));
        if let Ok(Some(name)) = &session {
            parts.extensions.insert(self.sessions.attempt(name));
        }
        // Most requests (every GET) have no body: no timer, no collection.
        let body = if hyper::body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match Box::pin(self.read_body(body, parts.version)).await {
                Ok(body) => body,
                Err(response) => {
                    return Ok(self.log(&parts, &[], started, response, Outcome::Error, None));
                }
            }
        };
        if parts.uri.path().starts_with(CONTROL_PREFIX) {
            // A store's index being built behind serving is awaited here rather than on a
            // runtime thread; a health probe (what a test harness polls before it starts) does
            // not wait.
            if crate::proxy::control::reads_every_recording(&parts) {
                Box::pin(self.tapes.until_indexed()).await;
                if let Some(why) = self.tapes.indexing_failure() {
                    let response = unreadable_response(why, json!({}));
                    return Ok(self.log(&parts, &body, started, response, Outcome::Control, None));
                }
            }
            let response = crate::proxy::control::handle(self, &parts, &body, peer);
            return Ok(self.log(&parts, &body, started, response, Outcome::Control, None));
        }
        // A new session must make folders Windows can; one read from an older folder goes on
        // (asked once the store's index is built: reading it before would block this thread).
        if let Ok(Some(name)) = &session
            && let Err(why) = crate::model::session::validate_new(name)
        {
            Box::pin(self.tapes.until_indexed()).await;
            if !self.tapes.has_session(name) {
                let why = format!("{}: {why}", crate::model::session::SESSION_HEADER);
                let response =
                    error_response(StatusCode::BAD_REQUEST, "IMS_VCR.BAD_SESSION", &why, json!({}));
                return Ok(self.log(&parts, &body, started, response, Outcome::Error, None));
            }
        }
        let session = match &session {
            Ok(session) => session.as_deref(),
            Err(why) => {
                let response =
                    error_response(StatusCode::BAD_REQUEST, "IMS_VCR.BAD_SESSION", why, json!({}));
                return Ok(self.log(&parts, &body, started, response, Outcome::Error, None));
            }
        };
        match self.settings.realism.next_fault() {
            Some(FaultKind::Reset) => {
                self.stats.faults.fetch_add(1, Ordering::Relaxed);
                tracing::info!(method = %parts.method, path = %responses::shown_path(&parts, &body, None), "fault injected: connection reset");
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
                return Ok(self.log(&parts, &body, started, response, Outcome::Fault, None));
            }
            None => {}
        }
        // A clone (a count, not a copy; nothing for a request without a body) for the log line.
        let (response, outcome) = self.answer(mode, &parts, body.clone(), session).await;
        Ok(self.log(&parts, &body, started, response, outcome, session))
    }

    fn log(
        &self,
        parts: &Parts,
        body: &[u8],
        started: Option<Instant>,
        response: Response<Full<Bytes>>,
        outcome: Outcome,
        session: Option<&str>,
    ) -> Response<Full<Bytes>> {
        // Only a hit's latency is observed (and a hit always has its start time, see `handle`).
        let elapsed = match started {
            Some(started) if outcome == Outcome::Hit => started.elapsed(),
            _ => std::time::Duration::ZERO,
        };
        self.metrics.request(parts.uri.path(), outcome, elapsed);
        // Misses are counted where the key is known (`miss`), with their request line.
        if let Some(session) = session
            && outcome != Outcome::Miss
        {
            self.sessions.answered(session, sessions::attempt_of(parts), outcome, "");
        }
        // One line per request is for debugging (`-v`, `RUST_LOG`): under load, and in a CI log,
        // it costs a quarter of replay throughput and buries the summary.
        tracing::debug!(
            mode = self.mode().as_str(),
            method = %parts.method,
            path = %self.logged_path(parts, body, &response),
            status = response.status().as_u16(),
            outcome = outcome.as_str(),
            ms = format_args!(
                "{:.1}",
                started.map_or(0.0, |s| s.elapsed().as_secs_f64() * 1000.0)
            ),
            "request"
        );
        response
    }

    /// The path a request's log line shows ([`responses::shown_path`]), with the tokens earlier
    /// answers handed out masked too: a client may send its `X-Subject-Token` in a path segment,
    /// which passthrough forwards as it is (record and auto refuse to store such a request,
    /// and show it masked so).
    fn logged_path(&self, parts: &Parts, body: &[u8], response: &Response<Full<Bytes>>) -> String {
        let path = responses::shown_path(parts, body, Some(response));
        let issued = self.recorder.as_ref().map(|recorder| recorder.issued.whole()).unwrap_or_default();
        if issued.is_empty() {
            return path;
        }
        let shown = crate::secrets::shown::Shown::of_values(issued.into_iter().map(|needle| needle.value));
        shown.text(&path).into_owned()
    }

    async fn answer(
        &self,
        mode: Mode,
        parts: &Parts,
        body: Bytes,
        session: Option<&str>,
    ) -> (Response<Full<Bytes>>, Outcome) {
        if mode == Mode::Passthrough
            && let Some(recorder) = &self.recorder
        {
            // Nothing is looked up or stored: the key is only needed for a session's count.
            if let Some(session) = session {
                let key = self.key(parts, &body, Some(session));
                self.sessions.asked(session, sessions::attempt_of(parts), key.digest());
            }
            // Boxed, as below: forwarding futures are large.
            return Box::pin(self.pass_through(recorder, parts, body)).await;
        }
        let key = self.key(parts, &body, session);
        // `x-ims-vcr-skip`: a test's set-up or clean-up call takes no part in the recording. It
        // never takes a recorded answer (that would shift the test's own), is never stored,
        // and counts for nothing in the session. (A value that is neither yes nor no was
        // refused before: `refusal_of`.)
        if skip_of(parts) == Ok(true) {
            return match (mode, &self.recorder) {
                (Mode::Replay, _) | (_, None) => (skipped_in_replay(parts, &body), Outcome::Error),
                (_, Some(recorder)) => {
                    Box::pin(self.forward_unstored(recorder, parts, body, &key)).await
                }
            };
        }
        if let Some(session) = session {
            self.sessions.asked(session, sessions::attempt_of(parts), key.digest());
        }
        let recorder = match (mode, &self.recorder) {
            (Mode::Replay, _) | (_, None) => return self.replay(parts, &body, &key).await,
            (_, Some(recorder)) => recorder,
        };
        match mode {
            Mode::Auto => {
                // One lookup: it advances the request's playback cursor (a miss advances
                // nothing). While the store's index is built behind serving, a miss is looked up
                // again once it is, before it is forwarded and recorded (`replay::indexing`).
                let indexing = self.tapes.is_indexing();
                let mut played = self.lookup(parts, &body, &key, true);
                if matches!(played, Play::Miss) && indexing {
                    Box::pin(self.tapes.until_indexed()).await;
                    played = self.lookup(parts, &body, &key, true);
                }
                self.auto_played(recorder, parts, body, &key, &played).await
            }
            _ => {
                let forwarded = Box::pin(self.forward(recorder, parts, body, &key, mode)).await;
                self.served(parts, forwarded)
            }
        }
    }

    /// The request's key under the proxy's rules, in `session` (see [`keys`]).
    fn key(&self, parts: &Parts, body: &[u8], session: Option<&str>) -> Arc<RequestKey> {
        self.keys.key(&self.rules, parts, body, session)
    }

    /// Serves a prepared answer, pointing upstream URLs at the proxy when the answer has any.
    fn serve(
        &self,
        prepared: &Prepared,
        parts: &Parts,
        outcome: Outcome,
    ) -> Response<Full<Bytes>> {
        prepared.to_response(outcome, self.origin_for(prepared, parts).as_deref())
    }

    /// The proxy's own origin as the client reached it, when `prepared` mentions an upstream
    /// origin to point at it (`None` for almost every answer, which then costs nothing).
    fn origin_for(&self, prepared: &Prepared, parts: &Parts) -> Option<String> {
        if !prepared.mentions_upstream() {
            return None;
        }
        proxy_authority(parts).map(|a| format!("{}://{a}", self.settings.scheme))
    }

}

/// When a request in `mode` started, if its time is needed: the clock is read only when the
/// answer can be a hit (its latency feeds the replay histogram) or the request line is logged
/// with its time; forwarded answers have their own upstream timing.
fn started_for(mode: Mode) -> Option<Instant> {
    (matches!(mode, Mode::Replay | Mode::Auto) || tracing::enabled!(tracing::Level::DEBUG))
        .then(Instant::now)
}

/// The address of the listener a request reached, beside a `Host` that names no host (`a b`):
/// the links served to it point there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReachedAt(pub(crate) std::net::SocketAddr);

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
        session: session_of(parts).ok().flatten().map(str::to_owned),
    }
}

/// The authority the client used to reach the proxy: an absolute-form target's or the HTTP/2
/// `:authority`, else `Host`, when the connection found it names a host (`host[:port]`); else
/// the listener the client reached ([`ReachedAt`]: what it sent named none, as `h:65536`,
/// `alice@h` or `%` do, and links built from it would not come back to the proxy). Without
/// user information (`http://user:password@proxy/…`), which served links never repeat.
fn proxy_authority(parts: &Parts) -> Option<hyper::http::uri::Authority> {
    let authority = match (parts.extensions.get::<ReachedAt>(), parts.uri.authority()) {
        (Some(reached), _) => return reached.0.to_string().parse().ok(),
        (None, Some(authority)) => authority.clone(),
        (None, None) => {
            let host = parts.headers.get(hyper::header::HOST)?.to_str().ok()?;
            host.trim().parse::<hyper::http::uri::Authority>().ok()?
        }
    };
    if !authority.as_str().contains('@') {
        return Some(authority);
    }
    match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()).parse().ok(),
        None => authority.host().parse().ok(),
    }
}
