//! Answers the gate refused, kept in their place in a request's sequence.
//!
//! A request asked several times in a session (a client polling an image until it is `active`)
//! is replayed answer by answer, in the order the answers were recorded. When the leak gate
//! refuses one of them (the upstream echoed the token in it) and a later one is stored, leaving
//! the refused one out would shift every later answer forward: A, refused, C would replay as
//! A, C, C, silently. So when a later answer to the same request is stored, the refused one is
//! stored first as a **gap**: an answer with status 599 (as a replay miss: no IMS endpoint or
//! gateway sends it), `x-ims-vcr-not-recorded: <why>`, and a JSON error
//! `IMS_VCR.NOT_RECORDED` naming what the gate found (a header or field name and an encoding,
//! never the value). Replay then serves A, the gap, C: the client fails at the position that
//! was not recorded, with the reason, instead of reading the wrong answer.
//!
//! A refusal that no later answer follows stores nothing (a request answered once, or the last
//! answers of a sequence): replay misses it as before, and `auto` forwards it again. The gap
//! holds the request as the later answer was stored (masked and redacted) and nothing of the
//! refused answer but its status.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::model::interaction::{Body, Interaction, RecordedResponse};
use crate::model::key::RequestKey;
use crate::secrets::gate::Refusal;

pub use crate::model::headers::NOT_RECORDED_HEADER;
use crate::model::headers::NOT_RECORDED_STATUS;
/// The error code of a gap answer's JSON body.
pub const NOT_RECORDED_CODE: &str = "IMS_VCR.NOT_RECORDED";

/// One refused answer waiting for a later answer of its request.
#[derive(Clone, Debug)]
struct Refused {
    /// `leak-gate` or `redaction`.
    kind: &'static str,
    /// The refusal as the log shows it (names, never values).
    why: String,
    /// The live answer's status.
    status: u16,
    /// When it was served.
    recorded_at: String,
}

/// How many refusals are kept waiting for a later answer, across requests: a suite whose every
/// answer leaks must not grow memory without bound. Past it, a refusal is logged (as every one
/// is) but keeps no place.
const MAX_PENDING: usize = 10_000;

/// The refusals of this session that no later answer of their request has followed yet, by
/// the request's key as sent.
#[derive(Debug, Default)]
pub(crate) struct Gaps {
    /// Set once anything was refused: until then a stored answer does not take the lock.
    any: AtomicBool,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    by_key: HashMap<[u8; 32], Vec<Refused>>,
    /// Refusals in `by_key`, all requests together.
    total: usize,
}

impl Gaps {
    /// Notes that the gate refused the answer `status` to `key` (a refusal to key the request
    /// at all is not noted: there is no key to keep a place under).
    pub(crate) fn refused(&self, key: &RequestKey, refusal: &Refusal, status: u16) {
        let kind = match refusal {
            Refusal::Leak { .. } => "leak-gate",
            Refusal::Redaction(_) => "redaction",
            Refusal::Key(_) => return,
        };
        let refused = Refused {
            kind,
            why: refusal.to_string(),
            status,
            recorded_at: crate::model::interaction::now_rfc3339(),
        };
        let mut pending = self.lock();
        if pending.total >= MAX_PENDING {
            if pending.total == MAX_PENDING {
                pending.total += 1;
                tracing::warn!(
                    "{MAX_PENDING} refused answers are waiting for a later answer of their \
                     request; further refusals keep no place in their request's answers"
                );
            }
            return;
        }
        pending.by_key.entry(*key.digest()).or_default().push(refused);
        pending.total += 1;
        self.any.store(true, Ordering::Release);
    }

    /// The gaps to store before `passed`, an answer to `key` that passed the gate: one per
    /// refusal since the last stored answer, in order, each with `passed`'s request as stored
    /// (masked and redacted) and its redaction stamp (a cassette is stamped only when every
    /// answer in it is).
    pub(crate) fn take(&self, key: &RequestKey, passed: &Interaction) -> Vec<Interaction> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        let refused = {
            let mut pending = self.lock();
            let Some(refused) = pending.by_key.remove(key.digest()) else {
                return Vec::new();
            };
            pending.total = pending.total.min(MAX_PENDING) - refused.len();
            refused
        };
        refused.into_iter().map(|r| gap(passed, r)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .expect("no code panics while holding the gaps lock")
    }
}

/// The answer stored in place of `refused`, before `passed`.
fn gap(passed: &Interaction, refused: Refused) -> Interaction {
    let message = format!(
        "not recorded: when this request was recorded, the answer in this position (status {}) \
         was served live but not stored, because {}. Replay serves this error in its place so \
         the answers after it keep their order. Take the secret out of the answer (--redact, \
         --redact-field) and record the request again",
        refused.status, refused.why
    );
    let body = json!({
        "error": { "code": NOT_RECORDED_CODE, "message": message, "title": crate::proxy::MISS_REASON },
        "ims_vcr": { "kind": "not-recorded", "reason": refused.kind, "status": refused.status },
    });
    let bytes = serde_json::to_vec(&body).expect("a JSON value serialises");
    Interaction {
        request: passed.request.clone(),
        response: RecordedResponse {
            status: NOT_RECORDED_STATUS,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                (NOT_RECORDED_HEADER.to_owned(), refused.kind.to_owned()),
            ],
            body: Body::from_bytes(&bytes),
            recorded_at: refused.recorded_at,
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        },
        redaction: passed.redaction.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interaction::RecordedRequest;
    use crate::model::key::MatchRules;

    fn request(path: &str) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            headers: Vec::new(),
            body: None,
            session: None,
        }
    }

    /// An answer to `path` that passed the gate.
    fn passed(path: &str) -> Interaction {
        Interaction {
            request: request(path),
            response: RecordedResponse {
                status: 200,
                headers: Vec::new(),
                body: None,
                recorded_at: String::new(),
                latency_ms: 0,
                upstream: String::new(),
                other_upstreams: Vec::new(),
            },
            redaction: None,
        }
    }

    fn key(path: &str) -> RequestKey {
        RequestKey::of_recorded(&MatchRules::default(), &request(path)).unwrap()
    }

    #[test]
    fn a_refusal_becomes_a_gap_only_before_a_later_answer_of_its_own_request() {
        let gaps = Gaps::default();
        let leak = Refusal::Leak {
            label: "credential header x-auth-token".into(),
            encoding: "raw",
        };
        assert!(gaps.take(&key("/a"), &passed("/a")).is_empty(), "nothing refused yet");
        gaps.refused(&key("/a"), &leak, 200);
        gaps.refused(&key("/a"), &Refusal::Redaction("no JSON".into()), 201);
        gaps.refused(&key("/a"), &Refusal::Key("bad body".into()), 202);
        assert!(gaps.take(&key("/b"), &passed("/b")).is_empty(), "another request's");
        let taken = gaps.take(&key("/a"), &passed("/a"));
        let kinds: Vec<_> = taken
            .iter()
            .map(|g| (g.response.status, g.response.headers[1].1.as_str()))
            .collect();
        assert_eq!(kinds, [(599, "leak-gate"), (599, "redaction")]);
        let body = taken[0].response.body.as_ref().unwrap().to_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], NOT_RECORDED_CODE);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("x-auth-token") && message.contains("(status 200)"), "{message}");
        assert!(gaps.take(&key("/a"), &passed("/a")).is_empty(), "taken once");
        assert_eq!(NOT_RECORDED_STATUS, crate::proxy::MISS_STATUS);
    }
}
