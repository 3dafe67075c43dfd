//! Recordings built by hand: the request, response, interaction and recording values tests
//! write out field by field, with the fields they do not care about left empty.

use ims_vcr::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
use ims_vcr::model::key::{MatchRules, RequestKey};
use ims_vcr::model::recording::Recording;
use ims_vcr::secrets::redact::RedactionStamp;

/// `method path` with no query, headers or body.
pub fn request(method: &str, path: &str) -> RecordedRequest {
    RecordedRequest {
        method: method.into(),
        path: path.into(),
        query: None,
        headers: vec![],
        body: None,
        session: None,
    }
}

/// An answer with `status`, `headers` and `body`; no date, latency or upstream.
pub fn response(
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Body>,
) -> RecordedResponse {
    RecordedResponse {
        status,
        headers,
        body,
        recorded_at: String::new(),
        latency_ms: 0,
        upstream: String::new(),
        other_upstreams: Vec::new(),
    }
}

/// An exchange as the proxy sees it before redaction: no stamp.
pub fn interaction(request: RecordedRequest, response: RecordedResponse) -> Interaction {
    Interaction {
        request,
        response,
        redaction: None,
    }
}

/// A recording as `parse` builds one: one request keyed under `rules`, its answers in order,
/// one stamp (or none) on all of them.
pub fn recording(
    rules: &MatchRules,
    request: RecordedRequest,
    responses: Vec<RecordedResponse>,
    redaction: Option<RedactionStamp>,
) -> Recording {
    let key = RequestKey::of_recorded(rules, &request).unwrap();
    let answers = responses
        .into_iter()
        .map(|response| Interaction {
            request: request.clone(),
            response,
            redaction: redaction.clone(),
        })
        .collect();
    Recording { key, answers }
}
