//! The replay index: every recording turned once, at start-up, into ready-to-serve responses
//! (status, headers, body bytes), with a per-request cursor for ordered playback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use crate::interaction::{RecordedResponse, Recording, body_bytes};
use crate::key::RequestKey;
use crate::pseudonym::PseudonymKey;
use crate::redact::{RedactionPolicy, RedactionStamp, Redactor};

/// Header on every answer the proxy gives, saying where it came from: `hit` (replayed),
/// `recorded` (live, and stored), `miss`, `upstream-error`, `error` (the proxy refused the request).
pub const OUTCOME_HEADER: &str = "x-ims-vcr";

/// A response prepared once and served by cheap clones (the body is reference-counted).
#[derive(Clone, Debug)]
pub struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The upstream origin when the body or a header mentions it (a `Location`, a `self` link),
    /// so what is served can point at the proxy instead of the real cloud. `None` for almost
    /// every answer, which then costs nothing extra to serve.
    upstream_origin: Option<String>,
}

impl Prepared {
    /// Prepares a stored answer. Fails on a status or header that is not valid HTTP (cassettes
    /// are validated on load, so this only fires on a hand-edited store).
    pub fn from_recorded(response: &RecordedResponse) -> Result<Prepared, String> {
        let status = StatusCode::from_u16(response.status)
            .map_err(|_| format!("invalid status {}", response.status))?;
        let mut headers = HeaderMap::with_capacity(response.headers.len() + 1);
        for (name, value) in &response.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            headers.append(name, value);
        }
        // Framing is hyper's job: `Full` knows its length, so stale values must not survive.
        headers.remove(hyper::header::CONTENT_LENGTH);
        headers.remove(hyper::header::TRANSFER_ENCODING);
        let body = body_bytes(&response.body)?;
        let mentions = |origin: &str| {
            let escaped = origin.replace('/', "\\/");
            let needles = [origin.as_bytes(), escaped.as_bytes()];
            needles.iter().any(|n| contains(&body, n))
                || headers
                    .values()
                    .any(|v| needles.iter().any(|n| contains(v.as_bytes(), n)))
        };
        let upstream_origin =
            Some(response.upstream.clone()).filter(|o| !o.is_empty() && mentions(o));
        Ok(Prepared {
            status,
            headers,
            body,
            upstream_origin,
        })
    }

    /// True when serving this answer needs the proxy's own origin (see [`Prepared::to_response`]).
    pub fn mentions_upstream(&self) -> bool {
        self.upstream_origin.is_some()
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// A response to send, marked with the outcome. `proxy_origin` (e.g. `http://127.0.0.1:9696`)
    /// replaces the upstream origin in the body and headers, so a client following a link or a
    /// `Location` comes back to the proxy rather than going to the real cloud. The stored answer
    /// is not changed.
    pub fn to_response(
        &self,
        outcome: &'static str,
        proxy_origin: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let (body, headers) = match (&self.upstream_origin, proxy_origin) {
            (Some(upstream), Some(proxy)) => {
                rewrite_origin(&self.body, &self.headers, upstream, proxy)
            }
            _ => (self.body.clone(), self.headers.clone()),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response
            .headers_mut()
            .insert(OUTCOME_HEADER, HeaderValue::from_static(outcome));
        response
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Body and headers with `upstream` (plain and JSON-escaped `\/` forms) replaced by `proxy`.
fn rewrite_origin(
    body: &Bytes,
    headers: &HeaderMap,
    upstream: &str,
    proxy: &str,
) -> (Bytes, HeaderMap) {
    let pairs = [
        (upstream.to_owned(), proxy.to_owned()),
        (upstream.replace('/', "\\/"), proxy.replace('/', "\\/")),
    ];
    let rewrite = |bytes: &[u8]| {
        pairs.iter().fold(bytes.to_vec(), |acc, (from, to)| {
            replace_all(&acc, from.as_bytes(), to.as_bytes())
        })
    };
    let mut new_headers = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // A rewritten value is still valid: both origins are printable ASCII.
        let value =
            HeaderValue::from_bytes(&rewrite(value.as_bytes())).unwrap_or_else(|_| value.clone());
        new_headers.append(name.clone(), value);
    }
    (Bytes::from(rewrite(body)), new_headers)
}

/// One request's answers and its playback cursor.
#[derive(Debug)]
struct Tape {
    answers: Vec<Prepared>,
    /// How many times this request was served; the next answer is `answers[min(next, len-1)]`.
    next: AtomicUsize,
}

/// All recordings, ready to serve.
#[derive(Debug, Default)]
pub struct Tapes {
    tapes: HashMap<[u8; 32], Tape>,
    /// Request lines of every recording, for "nearest recorded requests" on a miss.
    lines: Vec<String>,
    /// The distinct redaction stamps the recordings carry.
    stamps: Vec<RedactionStamp>,
    /// Redacts incoming requests so clients sending real values match redacted recordings.
    redactor: Option<Redactor>,
}

impl Tapes {
    /// Prepares every recording. Fails naming the request whose stored answer is invalid.
    pub fn new(recordings: &[Recording]) -> Result<Tapes, String> {
        let mut tapes = HashMap::with_capacity(recordings.len());
        let mut lines = Vec::with_capacity(recordings.len());
        let mut stamps: Vec<RedactionStamp> = Vec::new();
        for recording in recordings {
            let answers = recording
                .answers
                .iter()
                .map(|i| Prepared::from_recorded(&i.response))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", recording.key.request_line()))?;
            if answers.is_empty() {
                continue;
            }
            lines.push(recording.key.request_line().to_owned());
            for stamp in recording
                .answers
                .iter()
                .filter_map(|a| a.redaction.as_ref())
            {
                if !stamps.contains(stamp) {
                    stamps.push(stamp.clone());
                }
            }
            tapes.insert(
                *recording.key.digest(),
                Tape {
                    answers,
                    next: AtomicUsize::new(0),
                },
            );
        }
        lines.sort();
        Ok(Tapes {
            tapes,
            lines,
            stamps,
            redactor: None,
        })
    }

    /// Lets clients that send real values match recordings redacted with `key`. Returns a
    /// warning when the recordings were redacted with another key (real values then cannot
    /// match; pseudonyms still do).
    pub fn use_redaction_key(&mut self, key: PseudonymKey) -> Option<String> {
        let mut policy = RedactionPolicy {
            fields: vec![],
            headers: vec![],
            query: vec![],
        };
        let mut foreign = Vec::new();
        for stamp in &self.stamps {
            if stamp.key_fingerprint == key.fingerprint() {
                let p = &stamp.policy;
                policy.extend(&p.fields, &p.headers, &p.query);
            } else if !foreign.contains(&stamp.key_fingerprint) {
                foreign.push(stamp.key_fingerprint.clone());
            }
        }
        let any =
            !(policy.fields.is_empty() && policy.headers.is_empty() && policy.query.is_empty());
        let warning = (!foreign.is_empty()).then(|| {
            format!(
                "recordings were redacted with key {} but IMS_VCR_REDACT_KEY is {}: requests carrying \
                 real owner/project values will not match (requests carrying the pseudonyms still do)",
                foreign.join(", "),
                key.fingerprint()
            )
        });
        self.redactor = any.then(|| Redactor::new(policy, key));
        warning
    }

    /// The redactor for incoming requests, when the recordings are redacted with the current key.
    pub fn redactor(&self) -> Option<&Redactor> {
        self.redactor.as_ref()
    }

    /// Number of recorded requests.
    pub fn len(&self) -> usize {
        self.tapes.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.tapes.is_empty()
    }

    /// The next answer for `key` in recorded order, repeating the last one once all were served.
    pub fn play(&self, key: &RequestKey) -> Option<&Prepared> {
        let tape = self.tapes.get(key.digest())?;
        let served = tape.next.fetch_add(1, Ordering::Relaxed);
        Some(&tape.answers[served.min(tape.answers.len() - 1)])
    }

    /// Up to `n` recorded request lines closest to `key`, for the miss answer: same method first,
    /// then most leading path segments shared, then edit distance.
    pub fn nearest(&self, key: &RequestKey, n: usize) -> Vec<String> {
        let wanted = key.request_line();
        let (method, path) = split_line(wanted);
        let mut scored: Vec<((bool, usize, usize), &String)> = self
            .lines
            .iter()
            .map(|line| {
                let (m, p) = split_line(line);
                let shared = path
                    .split('/')
                    .zip(p.split('/'))
                    .take_while(|(a, b)| a == b)
                    .count();
                (
                    (m != method, usize::MAX - shared, distance(wanted, line)),
                    line,
                )
            })
            .collect();
        scored.sort();
        scored.into_iter().take(n).map(|(_, l)| l.clone()).collect()
    }
}

/// Method and path (without query) of a request line.
fn split_line(line: &str) -> (&str, &str) {
    let (method, target) = line.split_once(' ').unwrap_or((line, ""));
    (method, target.split('?').next().unwrap_or_default())
}

/// Levenshtein distance on chars, capped in length so a hostile request line stays cheap.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(512).collect();
    let b: Vec<char> = b.chars().take(512).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interaction::{Body, Interaction, RecordedRequest};
    use crate::key::MatchRules;

    fn recording(path: &str, statuses: &[&str]) -> Recording {
        let request = RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            headers: vec![],
            body: None,
        };
        let key = RequestKey::of_recorded(&MatchRules::default(), &request).unwrap();
        let answers = statuses
            .iter()
            .map(|s| Interaction {
                request: request.clone(),
                response: RecordedResponse {
                    status: 200,
                    headers: vec![("content-length".into(), "999".into())],
                    body: Body::from_bytes(format!("{{\"status\":\"{s}\"}}").as_bytes()),
                    recorded_at: String::new(),
                    latency_ms: 0,
                    upstream: String::new(),
                },
                redaction: None,
            })
            .collect();
        Recording { key, answers }
    }

    #[test]
    fn answers_play_in_order_then_the_last_repeats() {
        let rec = recording("/v2/images/p", &["queued", "saving", "active"]);
        let tapes = Tapes::new(std::slice::from_ref(&rec)).unwrap();
        let bodies: Vec<_> = (0..5)
            .map(|_| tapes.play(&rec.key).unwrap().body().clone())
            .collect();
        let statuses: Vec<_> = bodies
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(
            statuses,
            [
                r#"{"status":"queued"}"#,
                r#"{"status":"saving"}"#,
                r#"{"status":"active"}"#,
                r#"{"status":"active"}"#,
                r#"{"status":"active"}"#
            ]
        );
    }

    #[test]
    fn stale_content_length_is_never_served() {
        let rec = recording("/x", &["a"]);
        let tapes = Tapes::new(std::slice::from_ref(&rec)).unwrap();
        let response = tapes.play(&rec.key).unwrap().to_response("hit", None);
        assert!(response.headers().get("content-length").is_none());
        assert_eq!(response.headers()[OUTCOME_HEADER], "hit");
    }

    #[test]
    fn the_upstream_origin_is_rewritten_to_the_proxy_in_what_is_served() {
        let response = RecordedResponse {
            status: 201,
            headers: vec![("location".into(), "https://ims.example/v2/images/x".into())],
            body: Body::from_bytes(
                br#"{"a":"https://ims.example/v2/","b":"https:\/\/ims.example\/v2"}"#,
            ),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: "https://ims.example".into(),
        };
        let prepared = Prepared::from_recorded(&response).unwrap();
        assert!(prepared.mentions_upstream());
        let served = prepared.to_response("hit", Some("http://127.0.0.1:9"));
        assert_eq!(
            served.headers()["location"],
            "http://127.0.0.1:9/v2/images/x"
        );
        let body = http_body_util::BodyExt::collect(served.into_body());
        let body = futures_executor_block_on(body);
        assert_eq!(
            body,
            br#"{"a":"http://127.0.0.1:9/v2/","b":"http:\/\/127.0.0.1:9\/v2"}"#
        );
        // Answers that do not mention the upstream are served untouched.
        let plain = RecordedResponse {
            headers: vec![],
            body: Body::from_bytes(b"{}"),
            ..response
        };
        assert!(!Prepared::from_recorded(&plain).unwrap().mentions_upstream());
    }

    fn futures_executor_block_on<
        B: std::future::Future<
                Output = Result<http_body_util::Collected<Bytes>, std::convert::Infallible>,
            >,
    >(
        f: B,
    ) -> Vec<u8> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn nearest_prefers_the_closest_request_line() {
        let recs = [
            recording("/v2/images/aaaa", &["a"]),
            recording("/v2/schemas/image", &["a"]),
        ];
        let tapes = Tapes::new(&recs).unwrap();
        let probe = recording("/v2/images/aaab", &["a"]).key;
        assert_eq!(
            tapes.nearest(&probe, 1),
            vec!["GET /v2/images/aaaa".to_string()]
        );
        assert!(tapes.play(&probe).is_none());
    }
}
