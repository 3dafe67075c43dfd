//! A response prepared once, at start-up or record time (status, headers, body bytes), and
//! served by cheap clones; with the upstream origin pointed at the proxy when it mentions it
//! (in the headers, and in a body that is text a client reads links from: see
//! [`rewrites_body`]; binary data such as an image file is served byte for byte).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::model::headers::{Order, PLACEHOLDER_MARKER, PLACEHOLDER_TOKEN, takes_placeholder};
use crate::model::interaction::{Body, Interaction, RecordedResponse, body_bytes};
use crate::net::outcome::{OUTCOME_HEADER_NAME, Outcome};
use crate::replay::origins::{contains, mentions_either_spelling, rewrite_origins};
use crate::replay::timeshift;

/// The one-pass replacement of values (`tools::drift` uses it too).
pub(crate) use crate::replay::origins::replace_each;

/// A response prepared once and served by cheap clones (the body is reference-counted).
#[derive(Clone, Debug)]
pub struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The upstream origins a header or the body mentions (a `Location`, a `self` link, a
    /// service catalog naming another route's upstream), so what is served can point at the
    /// proxy instead of the real cloud. Empty for almost every answer, which then costs nothing
    /// extra to serve.
    upstream_origins: Vec<String>,
    /// True when the body is text a client reads links from ([`rewrites_body`]): only then are
    /// the origins looked for, and replaced, in it. Headers always are.
    text_body: bool,
    /// How long the upstream took when this was recorded (for `--latency recorded`).
    latency: std::time::Duration,
    /// When it was recorded (`recorded_at`), for moving token times to now.
    recorded_at: Option<time::OffsetDateTime>,
    /// The names of the JSON string fields that hold a timestamp (found once, here), so serving
    /// an answer without any to shift costs a look at a short list.
    time_fields: Box<[String]>,
}

impl Prepared {
    /// Prepares a stored answer to a request other than `HEAD` (see [`Prepared::from_interaction`]).
    /// Fails on a status or header that is not valid HTTP (cassettes are validated on load, so
    /// this only fires on a hand-edited store).
    #[cfg(any(test, feature = "internals"))]
    pub fn from_recorded(response: &RecordedResponse) -> Result<Prepared, String> {
        Prepared::with_body(response, body_bytes(&response.body)?)
    }

    /// Prepares the stored answer of `interaction` for the request it answers: an answer to a
    /// `HEAD` keeps the `Content-Length` the upstream gave (the size of what a `GET` would
    /// bring), every other answer is framed by the proxy.
    pub fn from_interaction(interaction: &Interaction) -> Result<Prepared, String> {
        let body = body_bytes(&interaction.response.body)?;
        Prepared::stored(
            &interaction.response,
            body,
            interaction.request.method == Method::HEAD.as_str(),
        )
    }

    /// Prepares `response`, an answer to a request other than `HEAD`, with `body`, the bytes
    /// its stored body stands for (known already when it was just recorded: saves encoding the
    /// body again).
    #[cfg(any(test, feature = "internals"))]
    pub fn with_body(response: &RecordedResponse, body: Bytes) -> Result<Prepared, String> {
        Prepared::stored(response, body, false)
    }

    /// Prepares `response` with `body`; `head` when it answers a `HEAD` request.
    fn stored(response: &RecordedResponse, body: Bytes, head: bool) -> Result<Prepared, String> {
        let status = StatusCode::from_u16(response.status)
            .map_err(|_| format!("invalid status {}", response.status))?;
        let headers = header_map(
            response
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            response.headers.len(),
        )?;
        let origins = std::iter::once(response.upstream.as_str())
            .chain(response.other_upstreams.iter().map(String::as_str));
        let mut prepared = Prepared::assembled(status, headers, body, head, origins);
        // Only text is read for token times: a file's bytes (an image downloaded, its checksum
        // in `Content-MD5`) are served as recorded even when they happen to be JSON.
        let time_fields = if prepared.text_body && timeshift::may_hold_timestamps(&prepared.body) {
            serde_json::from_slice::<serde_json::Value>(&prepared.body)
                .map(|json| timeshift::timestamp_fields(&json))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        prepared.latency = std::time::Duration::from_millis(response.latency_ms);
        prepared.recorded_at = timeshift::recorded_at(&response.recorded_at);
        prepared.time_fields = time_fields.into();
        Ok(prepared)
    }

    /// A live answer to a `method` request prepared to be relayed once, as
    /// [`Prepared::from_interaction`] prepares its stored form (every header as text,
    /// `upstream` then `other_upstreams` as the origins it may mention), without the text round
    /// trip when every header value is UTF-8 (as any IMS header is). Carries no recording time,
    /// latency or timestamp fields: it is served, never replayed.
    pub fn relayed<'o>(
        method: &Method,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        origins: impl Iterator<Item = &'o str>,
    ) -> Result<Prepared, String> {
        let as_stored = headers.iter().all(|(name, value)| {
            name.as_str() != PLACEHOLDER_MARKER && std::str::from_utf8(value.as_bytes()).is_ok()
        });
        let headers = if as_stored {
            headers
        } else {
            let pairs: Vec<(String, String)> = crate::model::headers::to_pairs(&headers, |_| true);
            header_map(
                pairs.iter().map(|(name, value)| (name.as_str(), value.as_str())),
                pairs.len(),
            )?
        };
        let head = *method == Method::HEAD;
        Ok(Prepared::assembled(status, headers, body, head, origins))
    }

    /// The parts every prepared answer shares: framing headers dropped, the outcome header in
    /// place, and the `origins` the answer mentions. `head` when it answers a `HEAD` request.
    fn assembled<'o>(
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
        head: bool,
        origins: impl Iterator<Item = &'o str>,
    ) -> Prepared {
        // Framing is hyper's job: `Full` knows its length, so stale values must not survive.
        // An answer to a `HEAD` has no body to frame: its length is the upstream's word on the
        // size of what a `GET` brings (clients size downloads by it), kept when it is one
        // number (the upstream side leaves it out of a content-encoded answer, whose body is
        // stored decoded).
        // Hop-by-hop headers belong to one connection (a hand-edited cassette could hold
        // `Connection: close` or `Upgrade`): never served. Bodies are stored decoded: an
        // encoding left in a store an older ims-vcr imported would make the client decode what
        // is not encoded. One pass over the names when there is none of these to drop (a relayed
        // answer's were dropped as it came in: `net::upstream`); the others keep their order.
        let keep_length = head && body.is_empty() && is_one_length(&headers);
        let dropped = |name: &HeaderName| {
            (!keep_length && name == CONTENT_LENGTH) || name == hyper::header::CONTENT_ENCODING
        };
        crate::model::headers::strip_hop_by_hop(&mut headers, dropped, Order::Kept);
        // In place already for the common case, so serving a hit is one clone and no insert
        // (which could grow the cloned map).
        headers.insert(OUTCOME_HEADER_NAME, Outcome::Hit.header_value());
        let text_body = rewrites_body(&headers, &body);
        let searched: &[u8] = if text_body { &body } else { &[] };
        let upstream_origins: Vec<String> = origins
            .filter(|o| !o.is_empty() && mentions_either_spelling(o, searched, &headers))
            .map(str::to_owned)
            .collect();
        Prepared {
            status,
            headers,
            body,
            upstream_origins,
            text_body,
            latency: std::time::Duration::ZERO,
            recorded_at: None,
            time_fields: Box::default(),
        }
    }

    /// True when the answer has a timestamp in a field `shifted` names, and a `recorded_at` to
    /// move it from.
    pub fn shifts_time(&self, shifted: &dyn Fn(&str) -> bool) -> bool {
        self.recorded_at.is_some() && self.time_fields.iter().any(|f| shifted(f))
    }

    /// A copy with the timestamps of the fields `shifted` names moved forward by the time
    /// between `recorded_at` and `now`, each in its own format (see [`timeshift`]).
    pub fn time_shifted(&self, shifted: &dyn Fn(&str) -> bool, now: time::OffsetDateTime) -> Prepared {
        let (Some(recorded), true, Ok(mut json)) = (
            self.recorded_at,
            self.text_body,
            serde_json::from_slice::<serde_json::Value>(&self.body),
        ) else {
            return self.clone();
        };
        if timeshift::shift_fields(&mut json, shifted, now - recorded) == 0 {
            return self.clone();
        }
        // Written back in the style it came in (Keystone writes Python's `json.dumps` style).
        let body = Body::from_bytes(&self.body)
            .and_then(|style| style.json_in_same_style(&json))
            .and_then(|body| body.to_bytes().ok())
            .unwrap_or_else(|| {
                Bytes::from(serde_json::to_vec(&json).expect("a parsed value serialises"))
            });
        Prepared {
            body,
            ..self.clone()
        }
    }

    /// True when serving this answer needs the proxy's own origin (see [`Prepared::to_response`]).
    pub fn mentions_upstream(&self) -> bool {
        !self.upstream_origins.is_empty()
    }

    /// The upstream origins this answer mentions (of those it was prepared with, in their
    /// order): what a recording lists as its `upstream` and `other_upstreams`.
    pub fn mentioned_origins(&self) -> &[String] {
        &self.upstream_origins
    }

    /// The upstream latency observed when this answer was recorded.
    pub fn latency(&self) -> std::time::Duration {
        self.latency
    }

    /// The HTTP status.
    #[cfg(any(test, feature = "internals"))]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// True for a gap: the answer stored in place of one the leak gate refused
    /// (`proxy/gaps.rs`), which replay counts as a miss and `auto` forwards.
    pub fn is_gap(&self) -> bool {
        use crate::model::headers::{NOT_RECORDED_HEADER, NOT_RECORDED_STATUS};
        self.status.as_u16() == NOT_RECORDED_STATUS && self.headers.contains_key(NOT_RECORDED_HEADER)
    }

    /// The body bytes.
    #[cfg(any(test, feature = "internals"))]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// A response to send, marked with the outcome. `proxy_origin` (e.g. `http://127.0.0.1:9696`)
    /// replaces the upstream origin in the headers and in a text body ([`rewrites_body`]; a
    /// binary body is served as stored), so a client following a link or a `Location` comes
    /// back to the proxy rather than going to the real cloud. Only a whole origin is replaced:
    /// one followed by more of a host or port (`https://h:1443`, `https://h.evil.example`) is
    /// another origin. The stored answer is not changed.
    pub fn to_response(
        &self,
        outcome: Outcome,
        proxy_origin: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let (body, headers) = self.served_parts(proxy_origin);
        assemble(self.status, outcome, body, headers)
    }

    /// The body and headers as served, the upstream origin pointed at `proxy_origin` (see
    /// [`Prepared::to_response`]).
    fn served_parts(&self, proxy_origin: Option<&str>) -> (Bytes, HeaderMap) {
        match proxy_origin {
            Some(proxy) if self.mentions_upstream() => rewrite_origins(
                &self.body,
                self.text_body,
                &self.headers,
                &self.upstream_origins,
                proxy,
            ),
            _ => (self.body.clone(), self.headers.clone()),
        }
    }

    /// [`Prepared::to_response`] for an answer served once (a relayed one): its header map and
    /// body move into the response instead of being cloned.
    pub fn into_response(self, outcome: Outcome, proxy_origin: Option<&str>) -> Response<Full<Bytes>> {
        match proxy_origin {
            Some(_) if self.mentions_upstream() => self.to_response(outcome, proxy_origin),
            _ => assemble(self.status, outcome, self.body, self.headers),
        }
    }

    /// [`Prepared::to_response`] with each `(recorded, live)` value of `substitutions` replaced
    /// in the body and the headers (volatile values; see `model::volatile`).
    pub fn to_response_substituted(
        &self,
        outcome: Outcome,
        proxy_origin: Option<&str>,
        substitutions: &[(String, String)],
    ) -> Response<Full<Bytes>> {
        let (mut body, headers) = self.served_parts(proxy_origin);
        // One pass, as for origins: a live value is never rewritten by another pair.
        let rewrite = |bytes: &[u8]| replace_each(bytes, substitutions);
        // The body only when it is text, as for origins: a file's bytes keep their checksum.
        if self.text_body
            && substitutions
                .iter()
            .any(|(from, _)| contains(&body, from.as_bytes()))
        {
            body = Bytes::from(rewrite(&body));
        }
        let mut new_headers = HeaderMap::with_capacity(headers.len());
        for (name, value) in &headers {
            let value =
                HeaderValue::from_bytes(&rewrite(value.as_bytes())).unwrap_or_else(|_| value.clone());
            new_headers.append(name.clone(), value);
        }
        assemble(self.status, outcome, body, new_headers)
    }

}

/// The response: `status`, `headers` marked with `outcome`, `body`.
fn assemble(
    status: StatusCode,
    outcome: Outcome,
    body: Bytes,
    headers: HeaderMap,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if outcome != Outcome::Hit {
        // The outcome header is in place already (`Prepared::assembled`): its value is replaced
        // where it is, found by name among the answer's few headers instead of hashed.
        let headers = response.headers_mut();
        match headers.iter_mut().find(|(name, _)| **name == OUTCOME_HEADER_NAME) {
            Some((_, value)) => *value = outcome.header_value(),
            None => {
                headers.insert(OUTCOME_HEADER_NAME, outcome.header_value());
            }
        }
    }
    response
}

/// Stored headers (name, value as text) as a header map, in order. A
/// [`PLACEHOLDER_MARKER`] header becomes the credential header it names, with
/// [`PLACEHOLDER_TOKEN`] as its value (a token the recorded answer carried, never stored: the
/// client gets a placeholder to pass back).
fn header_map<'h>(
    pairs: impl Iterator<Item = (&'h str, &'h str)>,
    count: usize,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(count + 1);
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case(PLACEHOLDER_MARKER) {
            let named = value.trim().to_ascii_lowercase();
            if takes_placeholder(&named)
                && let Ok(header) = HeaderName::from_bytes(named.as_bytes())
            {
                headers.append(header, HeaderValue::from_static(PLACEHOLDER_TOKEN));
            }
            continue;
        }
        // Every served answer gets a fresh `Date` (the server's own): one a HAR or a
        // hand-written cassette holds would otherwise be served forever.
        if name.eq_ignore_ascii_case("date") {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// True when a body is text a client reads links from, so the upstream origins in it are
/// pointed at the proxy; any other body (an image file, `application/octet-stream`) is served
/// byte for byte. Text is what its `Content-Type` names as such: `text/*`, JSON
/// (`application/json`, Keystone's `application/json-home`, any `+json`), XML
/// (`application/xml`, any `+xml`), `application/javascript` and
/// `application/x-www-form-urlencoded`. An answer without a `Content-Type` is text when its
/// body is UTF-8 (what a cassette writes as `json` or `text` rather than `base64`).
pub fn rewrites_body(headers: &HeaderMap, body: &[u8]) -> bool {
    match headers.get(CONTENT_TYPE) {
        Some(value) => value.to_str().is_ok_and(|value| is_text_type(value.as_bytes())),
        None => std::str::from_utf8(body).is_ok(),
    }
}

/// True for a `Content-Type` value naming text a client reads links from (see
/// [`rewrites_body`]); parameters (`; charset=utf-8`) and case do not matter. Compared in place,
/// with no lower-cased copy: it runs for every relayed answer.
fn is_text_type(value: &[u8]) -> bool {
    let essence = value.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    let Some(slash) = essence.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, sub) = (&essence[..slash], &essence[slash + 1..]);
    let sub_ends = |suffix: &[u8]| {
        sub.len() >= suffix.len() && sub[sub.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    const APPLICATION_TEXT: [&[u8]; 5] =
        [b"json", b"json-home", b"xml", b"javascript", b"x-www-form-urlencoded"];
    kind.eq_ignore_ascii_case(b"text")
        || sub_ends(b"+json")
        || sub_ends(b"+xml")
        || kind.eq_ignore_ascii_case(b"application")
            && APPLICATION_TEXT.iter().any(|text| sub.eq_ignore_ascii_case(text))
}

/// True when `headers` hold one `Content-Length`, a number (what a `HEAD` answer keeps).
fn is_one_length(headers: &HeaderMap) -> bool {
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (Some(value), None) => {
            let value = value.as_bytes();
            !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::origins::{FINDERS, default_port_spelling, mentions};
    use crate::model::interaction::Body;

    #[test]
    fn stale_framing_encoding_and_hop_by_hop_headers_are_never_served() {
        let recorded = RecordedResponse {
            status: 200,
            headers: vec![
                ("content-length".into(), "999".into()),
                ("transfer-encoding".into(), "chunked".into()),
                ("content-encoding".into(), "gzip".into()),
                ("connection".into(), "close, x-foo".into()),
                ("x-foo".into(), "per-connection".into()),
                ("upgrade".into(), "h2c".into()),
                ("keep-alive".into(), "timeout=5".into()),
            ],
            body: Body::from_bytes(b"{}"),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        };
        let response = Prepared::from_recorded(&recorded)
            .unwrap()
            .to_response(Outcome::Hit, None);
        assert!(response.headers().get("transfer-encoding").is_none());
        assert!(response.headers().get("content-length").is_none());
        assert!(response.headers().get("content-encoding").is_none());
        for hop in ["connection", "x-foo", "upgrade", "keep-alive"] {
            assert!(response.headers().get(hop).is_none(), "{hop}");
        }
        assert_eq!(response.headers()[crate::net::outcome::OUTCOME_HEADER], "hit");
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
            other_upstreams: Vec::new(),
        };
        let prepared = Prepared::from_recorded(&response).unwrap();
        assert!(prepared.mentions_upstream());
        let served = prepared.to_response(Outcome::Hit, Some("http://127.0.0.1:9"));
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

    #[test]
    fn a_date_a_cassette_holds_is_not_served() {
        let response = RecordedResponse {
            status: 200,
            headers: vec![("date".into(), "Thu, 01 Jan 1970 00:00:00 GMT".into()), ("etag".into(), "\"1\"".into())],
            body: Body::from_bytes(b"{}"),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        };
        let served = Prepared::from_recorded(&response).unwrap().to_response(Outcome::Hit, None);
        assert!(served.headers().get("date").is_none(), "the server stamps its own");
        assert_eq!(served.headers()["etag"], "\"1\"");
    }

    #[test]
    fn a_scheme_relative_link_or_one_with_its_scheme_in_capitals_is_rewritten_too() {
        let response = RecordedResponse {
            status: 302,
            headers: vec![
                ("location".into(), "//ims.example/v2/images/x".into()),
                ("link".into(), "<HTTPS://ims.example/v2/images?marker=x>; rel=next".into()),
            ],
            body: Body::from_bytes(br#"{"a":"\/\/ims.example\/v2","b":"//ims.example.evil/x"}"#),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: "https://ims.example".into(),
            other_upstreams: Vec::new(),
        };
        let prepared = Prepared::from_recorded(&response).unwrap();
        assert!(prepared.mentions_upstream());
        let served = prepared.to_response(Outcome::Hit, Some("http://127.0.0.1:9"));
        assert_eq!(served.headers()["location"], "//127.0.0.1:9/v2/images/x");
        assert_eq!(served.headers()["link"], "<http://127.0.0.1:9/v2/images?marker=x>; rel=next");
        let body = futures_executor_block_on(http_body_util::BodyExt::collect(served.into_body()));
        assert_eq!(body, br#"{"a":"\/\/127.0.0.1:9\/v2","b":"//ims.example.evil/x"}"#);
    }

    #[test]
    fn an_origin_spelt_with_or_without_its_default_port_is_the_same_origin() {
        for (upstream, mentioned) in [
            ("https://ims.example", "https://ims.example:443"),
            ("https://ims.example:443", "https://ims.example"),
            ("http://[::1]", "http://[::1]:80"),
        ] {
            let response = RecordedResponse {
                status: 200,
                headers: vec![("location".into(), format!("{mentioned}/v2/images/x"))],
                body: Body::from_bytes(format!(r#"{{"next":"{mentioned}/v2/images?marker=x"}}"#).as_bytes()),
                recorded_at: String::new(),
                latency_ms: 0,
                upstream: upstream.into(),
                other_upstreams: Vec::new(),
            };
            let prepared = Prepared::from_recorded(&response).unwrap();
            assert_eq!(prepared.mentioned_origins(), [upstream], "{upstream}");
            let served = prepared.to_response(Outcome::Hit, Some("http://127.0.0.1:9"));
            assert_eq!(served.headers()["location"], "http://127.0.0.1:9/v2/images/x");
            let body = futures_executor_block_on(http_body_util::BodyExt::collect(served.into_body()));
            assert_eq!(body, br#"{"next":"http://127.0.0.1:9/v2/images?marker=x"}"#);
        }
        // Neither spelling, though the host is there (another port, a longer name): no origin.
        let none = HeaderMap::new();
        for upstream in ["https://ims.example", "https://ims.example:443"] {
            for body in [&b"{}"[..], b"https://ims.example:8443/x", b"https://ims.example.evil/x", b"ims.example"] {
                assert!(!mentions_either_spelling(upstream, body, &none), "{upstream} {body:?}");
            }
            for body in [&b"https://ims.example/x"[..], b"https://ims.example:443/x", br"https:\/\/ims.example:443\/x"] {
                assert!(mentions_either_spelling(upstream, body, &none), "{upstream} {body:?}");
            }
        }
        // Another port is another origin.
        assert_eq!(default_port_spelling("https://ims.example:8443"), None);
        assert_eq!(default_port_spelling("http://h:443").as_deref(), None);
    }

    #[test]
    fn every_mentioned_route_origin_is_rewritten_in_one_pass() {
        let response = RecordedResponse {
            status: 201,
            headers: vec![("location".into(), "http://127.0.0.1:80/v3/x".into())],
            body: Body::from_bytes(
                br#"{"catalog":"https:\/\/ims.example:8443\/v2","self":"http://127.0.0.1:80/v3","other":"https://ims.example/v2"}"#,
            ),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: "http://127.0.0.1:80".into(),
            other_upstreams: vec![
                "https://ims.example:8443".into(),
                "https://not-mentioned.example".into(),
            ],
        };
        let prepared = Prepared::from_recorded(&response).unwrap();
        assert_eq!(prepared.upstream_origins.len(), 2, "only the mentioned ones");
        // The proxy origin contains the first upstream origin as a prefix: a second pass would
        // rewrite what the first put there.
        let served = prepared.to_response(Outcome::Hit, Some("http://127.0.0.1:8080"));
        assert_eq!(served.headers()["location"], "http://127.0.0.1:8080/v3/x");
        let body = futures_executor_block_on(http_body_util::BodyExt::collect(served.into_body()));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"catalog":"http:\/\/127.0.0.1:8080\/v2","self":"http://127.0.0.1:8080/v3","other":"https://ims.example/v2"}"#
        );
    }

    #[test]
    fn only_answers_with_a_named_time_field_are_shifted() {
        let answer = |body: &str| RecordedResponse {
            status: 201,
            headers: vec![],
            body: Body::from_bytes(body.as_bytes()),
            recorded_at: "2026-12-02T15:00:00Z".into(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        };
        let defaults = |n: &str| timeshift::DEFAULT_FIELDS.contains(&n);
        let image = Prepared::from_recorded(&answer(
            r#"{"created_at":"2018-09-06T14:03:27Z","updated_at":"2018-09-06T15:17:33Z"}"#,
        ))
        .unwrap();
        assert!(!image.shifts_time(&defaults));
        assert!(image.shifts_time(&|n: &str| n == "updated_at"));
        let plain = Prepared::from_recorded(&answer(r#"{"id":"x"}"#)).unwrap();
        assert!(plain.time_fields.is_empty());
        let token = Prepared::from_recorded(&answer(
            r#"{"token":{"expires_at":"2026-12-02T15:03:00.000000Z","issued_at":"2026-12-02T15:00:00.000000Z","x":"2026-12-02T15:00:00Z"}}"#,
        ))
        .unwrap();
        assert!(token.shifts_time(&defaults));
        let now = time::macros::datetime!(2026-12-03 09:30:00.5 UTC);
        let shifted = token.time_shifted(&defaults, now);
        assert_eq!(
            String::from_utf8(shifted.body().to_vec()).unwrap(),
            r#"{"token":{"expires_at":"2026-12-03T09:33:00.500000Z","issued_at":"2026-12-03T09:30:00.500000Z","x":"2026-12-02T15:00:00Z"}}"#
        );
        assert_eq!(token.body(), &Bytes::from_static(br#"{"token":{"expires_at":"2026-12-02T15:03:00.000000Z","issued_at":"2026-12-02T15:00:00.000000Z","x":"2026-12-02T15:00:00Z"}}"#), "the prepared answer is untouched");
        // Keystone writes Python's `json.dumps` style: the shifted answer keeps it.
        let python = Prepared::from_recorded(&answer(
            r#"{"token": {"expires_at": "2026-12-02T15:03:00.000000Z", "methods": ["password"]}}"#,
        ))
        .unwrap();
        assert_eq!(
            String::from_utf8(python.time_shifted(&defaults, now).body().to_vec()).unwrap(),
            r#"{"token": {"expires_at": "2026-12-03T09:33:00.500000Z", "methods": ["password"]}}"#
        );
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
    fn a_relayed_answer_is_served_as_its_stored_form_would_be() {
        let body = Bytes::from_static(
            br#"{"self":"https:\/\/ims.example\/v2","iam":"https://iam.example/v3","x":"ims.example"}"#,
        );
        let mut with_marker = HeaderMap::new();
        with_marker.append("location", HeaderValue::from_static("https://ims.example/v2/x"));
        with_marker.append("x-b", HeaderValue::from_static("1"));
        with_marker.append("x-a", HeaderValue::from_static("2"));
        with_marker.append("x-b", HeaderValue::from_static("3"));
        with_marker.append(PLACEHOLDER_MARKER, HeaderValue::from_static("X-Subject-Token"));
        with_marker.append("content-length", HeaderValue::from_static("999"));
        let mut not_utf8 = HeaderMap::new();
        not_utf8.append("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        not_utf8.append("x-ims-vcr", HeaderValue::from_static("upstream's"));
        let origins = ["https://ims.example", "https://iam.example", "https://other.example"];
        for headers in [with_marker, not_utf8, HeaderMap::new()] {
            let stored = RecordedResponse {
                status: 203,
                headers: crate::model::headers::to_pairs(&headers, |_| true),
                body: Body::from_bytes(&body),
                recorded_at: String::new(),
                latency_ms: 0,
                upstream: origins[0].into(),
                other_upstreams: origins[1..].iter().map(|o| (*o).to_owned()).collect(),
            };
            let expected = Prepared::with_body(&stored, body.clone()).unwrap();
            let relayed =
                Prepared::relayed(&Method::GET, StatusCode::from_u16(203).unwrap(), headers, body.clone(), origins.into_iter())
                    .unwrap();
            assert_eq!(relayed.upstream_origins, expected.upstream_origins);
            for proxy in [None, Some("http://127.0.0.1:9")] {
                let (a, b) = (
                    relayed.clone().into_response(Outcome::Forwarded, proxy),
                    expected.to_response(Outcome::Forwarded, proxy),
                );
                assert_eq!(a.status(), b.status());
                let pairs = |r: &Response<Full<Bytes>>| -> Vec<(String, Vec<u8>)> {
                    r.headers()
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                        .collect()
                };
                assert_eq!(pairs(&a), pairs(&b), "{proxy:?}");
                let collect = |r: Response<Full<Bytes>>| {
                    futures_executor_block_on(http_body_util::BodyExt::collect(r.into_body()))
                };
                assert_eq!(collect(a), collect(b));
            }
        }
    }

    fn answer(content_type: Option<&str>, body: &[u8]) -> RecordedResponse {
        let mut headers = vec![("location".into(), "https://h:27443/v2/images/x/file".into())];
        if let Some(content_type) = content_type {
            headers.push(("content-type".into(), content_type.into()));
        }
        RecordedResponse {
            status: 200,
            headers,
            body: Body::from_bytes(body),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: "https://h:27443".into(),
            other_upstreams: Vec::new(),
        }
    }

    fn served(prepared: &Prepared, proxy: &str) -> (Vec<u8>, HeaderMap) {
        let response = prepared.to_response(Outcome::Hit, Some(proxy));
        let headers = response.headers().clone();
        let body = futures_executor_block_on(http_body_util::BodyExt::collect(response.into_body()));
        (body, headers)
    }

    #[test]
    fn a_files_bytes_are_served_as_recorded_with_no_time_shift_or_volatile_value_put_in() {
        let json = br#"{"expires_at":"2024-01-01T00:00:00Z","note":"tf-acc-test-abcde"}"#;
        let pairs = [("tf-acc-test-abcde".to_owned(), "tf-acc-test-zzzzz".to_owned())];
        let now = time::macros::datetime!(2026-12-03 09:30:00 UTC);
        let defaults = |n: &str| timeshift::DEFAULT_FIELDS.contains(&n);
        let body_of = |response: Response<Full<Bytes>>| {
            futures_executor_block_on(http_body_util::BodyExt::collect(response.into_body()))
        };
        for (content_type, rewritten) in [
            (Some("application/octet-stream"), false),
            (Some("image/png"), false),
            (Some("application/json"), true),
            (None, true),
        ] {
            let mut recorded = answer(content_type, json);
            recorded.recorded_at = "2023-12-31T23:57:00Z".into();
            let prepared = Prepared::from_recorded(&recorded).unwrap();
            assert_eq!(prepared.shifts_time(&defaults), rewritten, "{content_type:?}");
            let shifted = prepared.time_shifted(&defaults, now);
            assert_eq!(shifted.body() != &Bytes::from_static(json), rewritten, "{content_type:?}");
            let substituted = body_of(prepared.to_response_substituted(Outcome::Hit, None, &pairs));
            assert_eq!(substituted != json, rewritten, "{content_type:?}");
            if !rewritten {
                assert_eq!(substituted, json, "{content_type:?}: the file's bytes as recorded");
            }
        }
    }

    #[test]
    fn only_a_text_body_has_the_origin_rewritten_and_headers_always_do() {
        let text = [
            "application/json",
            "application/json; charset=UTF-8",
            "Application/JSON",
            "application/json-home",
            "application/openstack-images-v2.1-json-patch+json",
            "application/schema+json",
            "application/xml",
            "application/atom+xml",
            "image/svg+xml",
            "text/plain",
            "text/html; charset=utf-8",
            "application/javascript",
            "application/x-www-form-urlencoded",
            // Case and spacing, compared in place.
            " TEXT/csv ",
            "application/Problem+JSON",
            "APPLICATION/X-WWW-Form-Urlencoded ;charset=utf-8",
        ];
        let binary = [
            "application/octet-stream",
            "application/x-gzip",
            "image/png",
            "application/vnd.ms-excel",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/json+",
            "texts/plain",
            "json",
            "/json",
            "",
        ];
        let body = b"\x00\x01https://h:27443/v2\xff\xfe";
        let text_body = b"{\"self\":\"https://h:27443/v2\"}";
        for content_type in text {
            let prepared = Prepared::from_recorded(&answer(Some(content_type), text_body)).unwrap();
            let (body, headers) = served(&prepared, "http://127.0.0.1:9");
            assert_eq!(body, b"{\"self\":\"http://127.0.0.1:9/v2\"}", "{content_type}");
            assert_eq!(headers["location"], "http://127.0.0.1:9/v2/images/x/file");
        }
        for content_type in binary {
            for body in [&body[..], &text_body[..]] {
                let prepared = Prepared::from_recorded(&answer(Some(content_type), body)).unwrap();
                assert!(prepared.mentions_upstream(), "the header does");
                let (served_body, headers) = served(&prepared, "http://127.0.0.1:9");
                assert_eq!(served_body, body, "{content_type}: served byte for byte");
                assert_eq!(headers["location"], "http://127.0.0.1:9/v2/images/x/file");
            }
        }
        // No Content-Type: text when the body is UTF-8.
        let prepared = Prepared::from_recorded(&answer(None, text_body)).unwrap();
        assert_eq!(served(&prepared, "http://127.0.0.1:9").0, b"{\"self\":\"http://127.0.0.1:9/v2\"}");
        let prepared = Prepared::from_recorded(&answer(None, body)).unwrap();
        assert_eq!(served(&prepared, "http://127.0.0.1:9").0, body);
        // A binary body alone does not make the answer mention the upstream: served untouched.
        let mut image = answer(Some("application/octet-stream"), body);
        image.headers.retain(|(name, _)| name != "location");
        let prepared = Prepared::from_recorded(&image).unwrap();
        assert!(!prepared.mentions_upstream());
        assert!(prepared.mentioned_origins().is_empty());
        let relayed = Prepared::relayed(
            &Method::GET,
            StatusCode::OK,
            header_map(image.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())), 1).unwrap(),
            Bytes::from_static(body),
            ["https://h:27443"].into_iter(),
        )
        .unwrap();
        assert!(!relayed.mentions_upstream());
        let response = relayed.into_response(Outcome::Forwarded, Some("http://127.0.0.1:9"));
        assert_eq!(
            futures_executor_block_on(http_body_util::BodyExt::collect(response.into_body())),
            body
        );
    }

    #[test]
    fn only_a_whole_origin_is_rewritten() {
        for (text, expected) in [
            ("https://h:27443/x", "http://p:9/x"),
            ("https://h:27443", "http://p:9"),
            ("\"https://h:27443\"", "\"http://p:9\""),
            ("https://h:27443?a=1 https://h:27443#f", "http://p:9?a=1 http://p:9#f"),
            ("<https://h:27443>; rel=self", "<http://p:9>; rel=self"),
            (r"https:\/\/h:27443\/x", r"http:\/\/p:9\/x"),
            (r#""https:\/\/h:27443""#, r#""http:\/\/p:9""#),
            // Other origins that start like it.
            ("https://h:274439/x", "https://h:274439/x"),
            ("https://h:27443.evil.example/x", "https://h:27443.evil.example/x"),
            ("https://h:27443-x.example/x", "https://h:27443-x.example/x"),
            ("https://h:27443_x/x", "https://h:27443_x/x"),
            ("https://h:27443:1/x", "https://h:27443:1/x"),
            ("https://h:27443@other/x", "https://h:27443@other/x"),
            ("https://h:27443a", "https://h:27443a"),
            (r"https:\/\/h:274439\/x", r"https:\/\/h:274439\/x"),
            (r"https:\/\/h:27443.evil.example\/x", r"https:\/\/h:27443.evil.example\/x"),
            // Both in one text.
            ("https://h:274439/x https://h:27443/y", "https://h:274439/x http://p:9/y"),
        ] {
            let response = RecordedResponse {
                headers: vec![("link".into(), text.into())],
                ..answer(Some("text/plain"), text.as_bytes())
            };
            let prepared = Prepared::from_recorded(&response).unwrap();
            assert_eq!(prepared.mentions_upstream(), text != expected, "{text}");
            let (body, headers) = served(&prepared, "http://p:9");
            assert_eq!(String::from_utf8(body).unwrap(), expected, "{text}");
            assert_eq!(headers["link"], expected, "{text}");
        }
        let none: [&HeaderValue; 0] = [];
        assert!(!mentions("https://h:27443", b"https://h:274439/x", none.iter().copied()));
        assert!(!mentions("https://h:27443", br"https:\/\/h:27443.e\/x", none.iter().copied()));
        assert!(mentions("https://h:27443", b"https://h:274439 https://h:27443", none.iter().copied()));
        // `replace_each` (volatile values) replaces wherever it finds one, as before.
        assert_eq!(
            replace_each(b"ab abc", &[("ab".into(), "X".into())]),
            b"X Xc".to_vec()
        );
    }

    #[test]
    fn a_head_answer_keeps_the_upstream_length_and_no_other_does() {
        let interaction = |method: &str, length: &[&str], body: &[u8]| Interaction {
            request: crate::model::interaction::RecordedRequest {
                method: method.into(),
                path: "/v2/images/x/file".into(),
                query: None,
                headers: Vec::new(),
                body: None,
                session: None,
            },
            response: RecordedResponse {
                headers: length
                    .iter()
                    .map(|l| ("content-length".to_owned(), (*l).to_owned()))
                    .collect(),
                ..answer(Some("application/octet-stream"), body)
            },
            redaction: None,
        };
        let length = |i: &Interaction| {
            let response = Prepared::from_interaction(i).unwrap().to_response(Outcome::Hit, None);
            response
                .headers()
                .get_all("content-length")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(length(&interaction("HEAD", &["5242880"], b"")), ["5242880"]);
        for (method, values, body) in [
            ("GET", &["5242880"][..], &b""[..]),
            ("GET", &["3"], b"abc"),
            ("DELETE", &["0"], b""),
            // Never a length that does not fit what is served, even for a HEAD.
            ("HEAD", &["5242880"], b"abc"),
            ("HEAD", &["5, 5"], b""),
            ("HEAD", &["5", "6"], b""),
            ("HEAD", &["-1"], b""),
            ("HEAD", &[], b""),
        ] {
            assert!(length(&interaction(method, values, body)).is_empty(), "{method} {values:?}");
        }
        // Relayed live, as stored.
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("5242880"));
        for (method, expected) in [(Method::HEAD, Some("5242880")), (Method::GET, None)] {
            let relayed = Prepared::relayed(
                &method,
                StatusCode::OK,
                headers.clone(),
                Bytes::new(),
                std::iter::empty(),
            )
            .unwrap();
            let response = relayed.into_response(Outcome::Forwarded, None);
            let got = response.headers().get("content-length").map(|v| v.to_str().unwrap());
            assert_eq!(got, expected, "{method}");
        }
    }

    #[test]
    fn an_origin_is_mentioned_plain_or_escaped_in_the_body_or_a_header() {
        let none: [&HeaderValue; 0] = [];
        let location = HeaderValue::from_static("http://h:1/x");
        for (body, headers, expected) in [
            (&b"see http://h:1/x"[..], &none[..], true),
            (br"see http:\/\/h:1\/x", &none[..], true),
            (b"see h:1 alone", &none[..], false),
            (b"", &[&location][..], true),
            (b"", &none[..], false),
        ] {
            let found = mentions("http://h:1", body, headers.iter().copied());
            assert_eq!(found, expected, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn more_origins_than_a_thread_keeps_finders_for_are_each_still_found_or_not() {
        // Twice round more origins than the per-thread finder cache holds: every search after
        // an eviction builds its finder again and answers as the first time.
        let origins: Vec<String> = (0..FINDERS + 3).map(|i| format!("http://h:{i}")).collect();
        for _ in 0..2 {
            for (i, origin) in origins.iter().enumerate() {
                let body = format!(r#"{{"self": "http://h:{}/v2/images/x"}}"#, i % 5);
                let expected = i < 5;
                assert_eq!(mentions(origin, body.as_bytes(), std::iter::empty()), expected, "{origin}");
            }
        }
    }
}
