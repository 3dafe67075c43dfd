//! Answers the gate refused, kept in their place in a request's sequence.
//!
//! A request asked several times in a session (a client polling an image until it is `active`)
//! is replayed answer by answer, in the order the answers were recorded. When the leak gate
//! refuses one of them (the upstream echoed the token in it), leaving it out would shift every
//! later answer forward: A, refused, C would replay as A, C, C, silently; and in `record` mode
//! a request whose only answer was refused would go on replaying the answer an older session
//! stored. So the refused answer is stored as a **gap** in its place: status 599 (as a replay
//! miss: no IMS endpoint or gateway sends it), `x-ims-vcr-not-recorded: <why>`, and a JSON error
//! `IMS_VCR.NOT_RECORDED` naming what the gate found (a header or field name and an encoding,
//! never the value). The gap holds the request as the gate stores it (masked, redacted and
//! stamped) and nothing of the refused answer but its status.
//!
//! Replay serves A, the gap, C, and counts the gap as a miss (`--fail-on-miss`, the summary):
//! the client fails at the position that was not recorded, with the reason, instead of reading
//! the wrong answer. `auto` forwards the request live there and stores nothing, as it served
//! the live answer when it recorded. A request the gate cannot key, or whose request itself
//! holds the secret, stores nothing: there is no clean request to keep a place under.

use hyper::http::request::Parts;
use serde_json::json;

use super::{Mode, Proxy, Recorder};
pub use crate::model::headers::NOT_RECORDED_HEADER;
use crate::model::headers::NOT_RECORDED_STATUS;
use crate::model::interaction::{Body, Interaction, RecordedResponse};
use crate::model::key::RequestKey;
use crate::secrets::gate::{Gate, Refusal};
use crate::secrets::redact::credential_needles;

/// The error code of a gap answer's JSON body.
pub const NOT_RECORDED_CODE: &str = "IMS_VCR.NOT_RECORDED";

/// The gap to store in place of `refused`'s answer, which the gate refused for `refusal`; `None`
/// for a request that cannot be keyed or whose body cannot be read. Its request still goes
/// through the gate.
pub(crate) fn gap(refused: &Interaction, refusal: &Refusal) -> Option<Interaction> {
    let kind = match refusal {
        Refusal::Leak { .. } => "leak-gate",
        Refusal::Redaction(_) => "redaction",
        // The request itself cannot be stored: no gap either.
        Refusal::Key(_) | Refusal::Unreadable(_) => return None,
    };
    let status = refused.response.status;
    let message = format!(
        "not recorded: when this request was recorded, the answer in this position (status \
         {status}) was served live but not stored, because {refusal}. Replay serves this error \
         in its place so the answers after it keep their order. Take the secret out of the \
         answer (--redact, --redact-field) and record the request again"
    );
    let body = json!({
        "error": { "code": NOT_RECORDED_CODE, "message": message, "title": crate::proxy::MISS_REASON },
        "ims_vcr": { "kind": "not-recorded", "reason": kind, "status": status },
    });
    let bytes = serde_json::to_vec(&body).expect("a JSON value serialises");
    Some(Interaction {
        request: refused.request.clone(),
        response: RecordedResponse {
            status: NOT_RECORDED_STATUS,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                (NOT_RECORDED_HEADER.to_owned(), kind.to_owned()),
            ],
            body: Body::from_bytes(&bytes),
            recorded_at: refused.response.recorded_at.clone(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        },
        redaction: None,
    })
}

impl Proxy {
    /// Stores the gap of an answer the gate refused for `refusal` (see the module doc): its request
    /// through the gate again (masked, redacted, keyed), looking for the request's credentials
    /// and the proxy's own. Nothing is stored when the request cannot be keyed or itself holds
    /// a secret. Never changes the client's answer.
    pub(super) async fn persist_gap(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        key: &RequestKey,
        refused: &Interaction,
        refusal: &Refusal,
        mode: Mode,
    ) {
        let (Some(store), Some(gap)) = (&recorder.store, gap(refused, refusal)) else {
            return;
        };
        let mut needles = credential_needles(&parts.headers);
        needles.extend(recorder.known_secrets());
        // And what the refused exchange holds, its answer included: a secret the answer handed
        // back (a credential's blob) that the request also holds unmasked stores no gap. (An
        // access key id the path names is stored as its pseudonym: see `model::access_keys`.)
        let exchange = crate::secrets::exposure::mask_credentials(refused, Some(&recorder.pseudonyms));
        if let Some(masked) = exchange {
            needles.extend(masked.needles);
        }
        let gate =
            Gate::new(recorder.redactor.as_ref(), &self.rules).pseudonymising(&recorder.pseudonyms);
        // The request line as the log may show it: those secrets masked wherever they are.
        let whole = recorder.issued.whole().into_iter().map(|n| n.value);
        let shown = crate::secrets::shown::Shown::of_values(needles.iter().map(|n| n.value.clone()).chain(whole));
        let line = shown.text(key.request_line());
        let line = line.as_ref();
        let passed = match gate.pass(&gap, needles) {
            Ok(passed) => passed,
            Err(again) => {
                let why = "nothing stored in the refused answer's place";
                tracing::error!(request = line, refused = %again, "{why}");
                return;
            }
        };
        let encoded = crate::model::interaction::Encoded::of(&passed.interaction);
        let attempt = crate::proxy::sessions::attempt_of(parts);
        match self.store_answer(recorder, store, &passed.key, encoded, mode, attempt.map_or(0, |a| a.0)).await {
            Ok(Some(seq)) => {
                let late = || self.attempt_over(key, attempt);
                self.tapes.record_stored(key, &passed.key, store, seq, late);
            }
            // Its session's next attempt recorded the request since: nothing to keep a place for.
            Ok(None) => {}
            Err(e) => {
                // Replay would serve the answers after it one place early: as lost as an answer.
                tracing::error!(request = line, error = %e, "gap NOT recorded");
                self.stats.not_stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interaction::RecordedRequest;

    fn refused(status: u16) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: "GET".into(),
                path: "/v2/images/polled".into(),
                query: None,
                headers: Vec::new(),
                body: None,
                session: None,
            },
            response: RecordedResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Body::from_bytes(br#"{"echo":"the token"}"#),
                recorded_at: "2026-12-05T00:00:00Z".into(),
                latency_ms: 12,
                upstream: "https://ims.example".into(),
                other_upstreams: Vec::new(),
            },
            redaction: None,
        }
    }

    #[test]
    fn a_gap_names_why_and_keeps_nothing_of_the_refused_answer_but_its_status() {
        let leak = Refusal::Leak {
            label: "credential header x-auth-token".into(),
            encoding: "raw",
        };
        let stored = gap(&refused(200), &leak).unwrap();
        assert_eq!(stored.request, refused(200).request);
        assert_eq!(stored.response.status, 599);
        assert_eq!(NOT_RECORDED_STATUS, crate::proxy::MISS_STATUS);
        assert_eq!(stored.response.headers[1], (NOT_RECORDED_HEADER.into(), "leak-gate".into()));
        assert!(stored.response.upstream.is_empty());
        let body = stored.response.body.as_ref().unwrap().to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("the token"));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], NOT_RECORDED_CODE);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("x-auth-token") && message.contains("(status 200)"), "{message}");
        let redaction = gap(&refused(201), &Refusal::Redaction("no JSON".into())).unwrap();
        assert_eq!(redaction.response.headers[1].1, "redaction");
        assert!(gap(&refused(200), &Refusal::Key("bad body".into())).is_none());
    }
}
