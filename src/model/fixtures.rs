//! Recordings built by hand for unit tests: a `GET` with nothing else, answers whose bodies say
//! `{"status":"…"}`, and recordings keyed under the default match rules.

use crate::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
use crate::model::recording::Recording;
use crate::model::key::{MatchRules, RequestKey};

/// `GET path` with no query, headers or body.
pub(crate) fn get(path: &str) -> RecordedRequest {
    RecordedRequest {
        method: "GET".into(),
        path: path.into(),
        query: None,
        headers: vec![],
        body: None,
        session: None,
    }
}

/// A 200 answer to `request` whose body is `{"status":"<status>"}`; no headers, date, latency,
/// upstream or redaction stamp.
pub(crate) fn status_answer(request: &RecordedRequest, status: &str) -> Interaction {
    Interaction {
        request: request.clone(),
        response: RecordedResponse {
            status: 200,
            headers: vec![],
            body: Body::from_bytes(format!("{{\"status\":\"{status}\"}}").as_bytes()),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        },
        redaction: None,
    }
}

/// `request` keyed under the default match rules, with one [`status_answer`] per status, in order.
pub(crate) fn recording_of(request: RecordedRequest, statuses: &[&str]) -> Recording {
    let key = RequestKey::of_recorded(&MatchRules::default(), &request).unwrap();
    let answers = statuses
        .iter()
        .map(|s| status_answer(&request, s))
        .collect();
    Recording { key, answers }
}

/// [`recording_of`] a [`get`] of `path`.
pub(crate) fn recording(path: &str, statuses: &[&str]) -> Recording {
    recording_of(get(path), statuses)
}

/// A `GET /v2/images/x` answered 200 with `body` (read as `Body::from_bytes` reads it) from
/// `https://ims.example`; no headers, date or latency.
pub(crate) fn answering(body: &str) -> Interaction {
    Interaction {
        request: get("/v2/images/x"),
        response: RecordedResponse {
            status: 200,
            headers: vec![],
            body: Body::from_bytes(body.as_bytes()),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: "https://ims.example".into(),
            other_upstreams: Vec::new(),
        },
        redaction: None,
    }
}
