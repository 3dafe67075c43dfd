//! `ims-vcr drift`: sends each recorded request to the live endpoint, compares the answers (see
//! [`crate::tools::diff`]) and renders the report. Read-only: nothing here writes a store or a cassette.

use std::fmt::Write as _;

use hyper::Method;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

#[cfg_attr(not(any(test, feature = "internals")), allow(unused_imports))]
pub use crate::tools::diff::{Change, ChangeKind, IgnoreRules, compare};
use crate::model::count;
use crate::model::headers::{is_credential, is_hop_by_hop, is_volatile_request};
use crate::model::interaction::{Interaction, body_bytes};
use crate::model::recording::Recording;
use crate::net::upstream::Upstream;
use crate::net::routes::Routes;

/// Environment variable whose value is sent as `X-Auth-Token` (tokens are never recorded, and a
/// flag would show in `ps`).
pub const ENV_TOKEN: &str = "IMS_VCR_DRIFT_TOKEN";

/// The drift of one recorded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDrift {
    /// `METHOD path[?query]`, as recorded.
    pub request: String,
    /// Differences in document order; empty when the live answer still matches (or when the
    /// request could not be checked).
    pub changes: Vec<Change>,
    /// Why the request could not be checked: a set-up problem, not drift.
    pub unchecked: Option<Unchecked>,
    /// Why the request was not sent, when it was not: not drift, and not a set-up problem
    /// either.
    pub skipped: Option<Skipped>,
}

/// Why drift did not send a recorded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// Its method may change state on the live endpoint (see [`Sends`]).
    UnsafeMethod,
    /// Every answer recorded for it is a gap (the leak gate refused to store each): there is
    /// no stored answer to compare the live one with.
    OnlyGaps,
}

/// Which recorded requests drift sends to the live endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sends {
    /// Only the safe methods (`GET`, `HEAD`, `OPTIONS`): a recorded `DELETE`, `PUT`, `PATCH`
    /// or `POST` (an image deletion, a sign-in) is skipped, since sending it again would change
    /// or create something on the live endpoint, or sign in with a redacted password.
    #[default]
    SafeOnly,
    /// Every recorded method (`--unsafe-methods`): for a throw-away project.
    All,
}

impl Sends {
    /// The methods [`Sends::SafeOnly`] sends, as the report names them.
    pub const SAFE: &'static [&'static str] = &["GET", "HEAD", "OPTIONS"];

    /// Methods are case-sensitive (RFC 9110, 9.1): a recorded `get` is not `GET` to an upstream,
    /// which may route it anywhere, so it is not known to be safe.
    fn sends(self, method: &str) -> bool {
        self == Sends::All || Self::SAFE.contains(&method)
    }
}

/// Why a recorded request could not be checked against the live endpoint. None of these says
/// anything about the API: they are reported apart from drift, with their own exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unchecked {
    /// No live answer (connect, TLS, timeout, cut connection, …): the upstream error.
    Unreachable(String),
    /// The live endpoint refused the credentials: 401 or 403 where the recording has another
    /// status (no token, an expired one, or AK/SK missing from the environment).
    Refused {
        /// The recorded status.
        recorded: u16,
        /// The live status.
        live: u16,
        /// The start of the live body (the gateway's error code says which credential).
        body: String,
    },
    /// The recording itself cannot be sent (no answer, a method or header that is not HTTP).
    Unsendable(String),
    /// The live answer was larger than `--max-answer-body`: the upstream error.
    TooLarge(String),
}

impl std::fmt::Display for Unchecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unchecked::Unreachable(error) => write!(f, "no answer: {error}"),
            Unchecked::Refused {
                recorded,
                live,
                body,
            } => write!(
                f,
                "the upstream refused the credentials ({live} where the recording has \
                 {recorded}) {body}"
            ),
            Unchecked::Unsendable(why) => write!(f, "cannot be sent: {why}"),
            Unchecked::TooLarge(error) => write!(f, "answer too large: {error}"),
        }
    }
}

impl RequestDrift {
    /// Breaking changes (none when the request could not be checked).
    pub fn breaking(&self) -> usize {
        self.changes.iter().filter(|c| c.is_breaking()).count()
    }
}

/// Sends each recording's first request to the upstream of its route (which rewrites `Host`, strips hop-by-hop
/// headers and re-signs with AK/SK when configured; `token` goes as `X-Auth-Token`) and compares
/// the answer with the *last* recorded one: the steady state of a polled request. Sequential on
/// purpose: this is a check, not a load test. Requests whose method `sends` leaves out are
/// skipped, never sent.
#[cfg(any(test, feature = "internals"))]
pub async fn run(
    recordings: &[Recording],
    routes: &Routes,
    ignore: &IgnoreRules,
    token: Option<&HeaderValue>,
    sends: Sends,
) -> Vec<RequestDrift> {
    let mut drifts = Vec::with_capacity(recordings.len());
    run_into(&mut drifts, recordings, routes, ignore, token, sends).await;
    drifts
}

/// [`run`], each request's result pushed to `drifts` as it is known: a caller that stops it (a
/// CI job's time running out) still has what was checked.
pub async fn run_into(
    drifts: &mut Vec<RequestDrift>,
    recordings: &[Recording],
    routes: &Routes,
    ignore: &IgnoreRules,
    token: Option<&HeaderValue>,
    sends: Sends,
) {
    // In the order they were recorded: with `--unsafe-methods`, a test's GET before its DELETE.
    let mut recordings: Vec<&Recording> = recordings.iter().collect();
    // As instants (a HAR's times carry offsets and fractions), a time that does not parse last.
    recordings.sort_by_cached_key(|r| {
        let at = r.answers.first().map(|a| a.response.recorded_at.as_str()).unwrap_or_default();
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(at, rfc3339).map_or(i128::MAX, |t| t.unix_timestamp_nanos())
    });
    // An upstream that answers nothing (a black-holed address) would cost every request the
    // whole upstream timeout: after this many in a row, the rest are not sent.
    const GIVE_UP_AFTER: usize = 3;
    // Per upstream: one route's black hole says nothing of another's.
    let mut unanswered: std::collections::HashMap<String, usize> = Default::default();
    let total = recordings.len();
    for recording in recordings {
        let first = recording.answers.first();
        // The steady state to compare with: the last answer that was stored, not the place a
        // refused one keeps (a gap: the leak gate's `599 IMS_VCR.NOT_RECORDED`).
        let last = recording.answers.iter().rev().find(|a| !a.response.is_gap());
        if first.is_some() && last.is_none() {
            tracing::debug!(request = recording.key.request_line(), "not sent: its answers are gaps");
            drifts.push(RequestDrift {
                request: label_of(recording),
                changes: Vec::new(),
                unchecked: None,
                skipped: Some(Skipped::OnlyGaps),
            });
            continue;
        }
        let (Some(first), Some(last)) = (first, last) else {
            drifts.push(RequestDrift {
                request: label_of(recording),
                changes: Vec::new(),
                unchecked: Some(Unchecked::Unsendable("the recording has no answer".into())),
                skipped: None,
            });
            continue;
        };
        let request = &first.request;
        let target = target_of(request);
        let label = label_of(recording);
        if !sends.sends(&request.method) {
            tracing::debug!(request = %label, "not sent: not a safe method");
            drifts.push(RequestDrift {
                request: label,
                changes: Vec::new(),
                unchecked: None,
                skipped: Some(Skipped::UnsafeMethod),
            });
            continue;
        }
        let route = routes.route(&request.path);
        let origin = route.map(|r| r.upstream().origin().to_owned()).unwrap_or_default();
        if unanswered.get(&origin).is_some_and(|n| *n >= GIVE_UP_AFTER) {
            drifts.push(RequestDrift {
                request: label,
                changes: Vec::new(),
                unchecked: Some(Unchecked::Unreachable(format!(
                    "not sent: the upstream answered none of the {GIVE_UP_AFTER} requests before"
                ))),
                skipped: None,
            });
            continue;
        }
        tracing::debug!(request = %label, "checking drift");
        let result = match route {
            Some(route) => check(first, last, &target, route.upstream(), ignore, token).await,
            None => Err(Unchecked::Unsendable(format!(
                "no route for {} (routes: {})",
                request.path,
                routes.describe()
            ))),
        };
        match &result {
            Err(Unchecked::Unreachable(why)) => {
                *unanswered.entry(origin).or_default() += 1;
                // Said as it happens: a CI job that times out first still shows why.
                tracing::warn!(request = %label, checked = drifts.len() + 1, of = total, "no answer: {why}");
            }
            _ => _ = unanswered.insert(origin, 0),
        }
        drifts.push(RequestDrift {
            request: label,
            unchecked: result.as_ref().err().cloned(),
            changes: result.unwrap_or_default(),
            skipped: None,
        });
    }
}

/// What a recorded request asks for: its path and query, as sent.
fn target_of(request: &crate::model::interaction::RecordedRequest) -> String {
    match &request.query {
        Some(query) => format!("{}?{query}", request.path),
        None => request.path.clone(),
    }
}

/// A recording as the report names it: its first request's line, and its session (two tests
/// recording the same request are two recordings).
fn label_of(recording: &Recording) -> String {
    let line = match recording.answers.first() {
        Some(first) => format!("{} {}", first.request.method, target_of(&first.request)),
        None => recording.key.request_line().to_owned(),
    };
    match recording.key.session() {
        Some(session) => format!("{line} | session: {session}"),
        None => line,
    }
}


async fn check(
    first: &Interaction,
    last: &Interaction,
    target: &str,
    upstream: &Upstream,
    ignore: &IgnoreRules,
    token: Option<&HeaderValue>,
) -> Result<Vec<Change>, Unchecked> {
    let request = &first.request;
    let unsendable = Unchecked::Unsendable;
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        unsendable(format!(
            "recorded method {:?} is not an HTTP method",
            request.method
        ))
    })?;
    // A redacted header holds a pseudonym, which means nothing to the live endpoint.
    let redacted = first.redaction.as_ref().map(|s| &s.policy.headers[..]);
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        if is_credential(name)
            || is_hop_by_hop(name)
            || is_volatile_request(name)
            || redacted.is_some_and(|r| r.iter().any(|h| h.eq_ignore_ascii_case(name)))
        {
            continue;
        }
        let bad = || unsendable(format!("recorded header {name:?} cannot be sent"));
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?,
            HeaderValue::from_str(value).map_err(|_| bad())?,
        );
    }
    if let Some(token) = token {
        headers.insert("x-auth-token", token.clone());
    }
    let body = body_bytes(&request.body)
        .map_err(|e| unsendable(format!("recorded request body: {e}")))?;
    let live = upstream
        .forward(&method, target, &headers, body)
        .await
        .map_err(|e| match e {
            crate::net::upstream::UpstreamError::TooLarge { .. } => Unchecked::TooLarge(e.to_string()),
            _ => Unchecked::Unreachable(e.to_string()),
        })?;
    let status = live.status.as_u16();
    // Nothing drift prints may carry a credential: the token from the environment, what was
    // sent (a re-signed signature) and cookies the answer sets are masked wherever the live
    // body echoes them, and credential-named fields are masked on both sides.
    let mut secrets: Vec<String> = token
        .and_then(|t| t.to_str().ok())
        .map(str::to_owned)
        .into_iter()
        .collect();
    secrets.extend(
        crate::secrets::redact::credential_needles(&live.sent_credentials)
            .into_iter()
            .chain(crate::secrets::redact::credential_needles(&live.headers))
            .map(|n| n.value),
    );
    let live_body = mask_secrets(&live.body, &secrets);
    let live = crate::net::upstream::LiveResponse {
        body: live_body.into(),
        ..live
    };
    let refusal = |s: u16| matches!(s, 401 | 403);
    if refusal(status) && !refusal(last.response.status) {
        return Err(Unchecked::Refused {
            recorded: last.response.status,
            live: status,
            body: crate::tools::diff::preview(&live.body),
        });
    }
    let recorded = body_bytes(&last.response.body)
        .map_err(|e| unsendable(format!("recorded body: {e}")))?;
    // Redacted fields hold pseudonyms: they always differ from the live value, so only their
    // presence and type are compared.
    let ignore = match &last.redaction {
        Some(stamp) => ignore
            .clone()
            .with_fields(stamp.policy.fields.iter().cloned()),
        None => ignore.clone(),
    };
    let recorded = mask_secrets(&recorded, &[]);
    Ok(compare(
        last.response.status,
        &recorded,
        status,
        &live.body,
        &ignore,
    ))
}

/// The report: per request a header line and one indented line per change, then the summary
/// `drift: N requests checked, M changed, K breaking` (K counts breaking changes), followed by
/// `; U not checked` when some requests could not be checked and `; S skipped (...)` when some
/// were not sent (see [`Sends`]).
pub fn render(drifts: &[RequestDrift]) -> String {
    let mut out = String::new();
    for drift in drifts {
        let (n, breaking) = (drift.changes.len(), drift.breaking());
        let _ = match &drift.unchecked {
            _ if drift.skipped == Some(Skipped::UnsafeMethod) => writeln!(
                out,
                "{} : skipped: not a {} (--unsafe-methods sends it)",
                drift.request,
                Sends::SAFE.join(", ")
            ),
            _ if drift.skipped == Some(Skipped::OnlyGaps) => writeln!(
                out,
                "{} : skipped: no answer of it was stored (the leak gate refused each when it \
                 was recorded), so there is nothing to compare with",
                drift.request
            ),
            Some(why) => writeln!(out, "{} : not checked: {why}", drift.request),
            None if n == 0 => writeln!(out, "{} : no changes", drift.request),
            None => writeln!(
                out,
                "{} : {} ({breaking} breaking)",
                drift.request,
                count(n, "change", "changes")
            ),
        };
        for change in &drift.changes {
            let _ = writeln!(out, "  {change}");
        }
    }
    let unchecked = drifts.iter().filter(|d| d.unchecked.is_some()).count();
    let skipped = skipped(drifts);
    let changed = drifts.iter().filter(|d| !d.changes.is_empty()).count();
    let breaking: usize = drifts.iter().map(RequestDrift::breaking).sum();
    let _ = write!(
        out,
        "drift: {} checked, {changed} changed, {breaking} breaking",
        count(drifts.len() - unchecked - skipped, "request", "requests"),
    );
    if unchecked > 0 {
        let _ = write!(out, "; {unchecked} not checked");
    }
    let gaps = drifts.iter().filter(|d| d.skipped == Some(Skipped::OnlyGaps)).count();
    if skipped > gaps {
        let _ = write!(
            out,
            "; {} skipped (not a {}: --unsafe-methods sends them)",
            skipped - gaps,
            Sends::SAFE.join(", ")
        );
    }
    if gaps > 0 {
        let _ = write!(out, "; {gaps} skipped (no answer stored)");
    }
    out.push('\n');
    // Field names and values come from recordings and from the live answer: nothing in them
    // may drive the terminal the report is printed on.
    crate::tools::escape_controls(&out).into_owned()
}

/// How many requests were skipped (not sent, see [`Sends`]).
pub fn skipped(drifts: &[RequestDrift]) -> usize {
    drifts.iter().filter(|d| d.skipped.is_some()).count()
}

/// What the command says when requests could not be checked: which set-up problem, and the fix.
/// Skipped requests alone are not a problem, unless nothing at all was sent: a check that
/// checked nothing must not pass.
pub fn unchecked_summary(drifts: &[RequestDrift]) -> Option<String> {
    let unchecked: Vec<&Unchecked> = drifts.iter().filter_map(|d| d.unchecked.as_ref()).collect();
    if unchecked.is_empty() {
        let skipped = skipped(drifts);
        let unsafe_only = drifts.iter().all(|d| d.skipped == Some(Skipped::UnsafeMethod));
        return (skipped > 0 && skipped == drifts.len()).then(|| match unsafe_only {
            false => "nothing was checked: every recorded request was skipped (the report \
                      says why for each)"
                .to_owned(),
            true => format!(
                "nothing was checked: {} not a {}, which drift does not send to a live \
                 endpoint unless --unsafe-methods is given",
                match skipped {
                    1 => "the one recorded request is".to_owned(),
                    n => format!("all {n} recorded requests are"),
                },
                Sends::SAFE.join(", ")
            )
        });
    }
    let mut causes = Vec::new();
    if unchecked
        .iter()
        .any(|u| matches!(u, Unchecked::Refused { .. }))
    {
        causes.push(format!(
            "the upstream refused the credentials: the token in {ENV_TOKEN} (sent as \
             X-Auth-Token) is missing, expired or for another project, or AK/SK are: set \
             {ENV_TOKEN} to a fresh token, or put HUAWEICLOUD_SDK_AK/_SK in the environment to \
             re-sign"
        ));
    }
    if unchecked
        .iter()
        .any(|u| matches!(u, Unchecked::Unreachable(_)))
    {
        causes.push(
            "the upstream could not be reached: check --upstream, the network, and \
             --upstream-ca for a private CA"
                .to_owned(),
        );
    }
    if unchecked
        .iter()
        .any(|u| matches!(u, Unchecked::TooLarge(_)))
    {
        causes.push(
            "some live answers were larger than --max-answer-body: raise it to check them"
                .to_owned(),
        );
    }
    if unchecked
        .iter()
        .any(|u| matches!(u, Unchecked::Unsendable(_)))
    {
        causes.push("some recordings cannot be sent (see the report)".to_owned());
    }
    Some(format!(
        "{} of {} could not be checked, which says nothing about the API: {}",
        unchecked.len(),
        count(drifts.len(), "request", "requests"),
        causes.join("; ")
    ))
}


/// `body` with every occurrence of `secrets` (4 bytes or longer) replaced by `REDACTED`, raw
/// and, when the body is JSON, inside its decoded strings (however they were escaped), and
/// every credential-named field's value too.
fn mask_secrets(body: &[u8], secrets: &[String]) -> Vec<u8> {
    use crate::model::credentials::{PLACEHOLDER, mask_json};
    let secrets: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    let placeholders: Vec<(String, String)> = secrets
        .iter()
        .map(|s| ((*s).clone(), PLACEHOLDER.to_owned()))
        .collect();
    let mut out = crate::replay::prepared::replace_each(body, &placeholders);
    fn strings(value: &mut serde_json::Value, secrets: &[&String], changed: &mut bool) {
        match value {
            serde_json::Value::String(text) => {
                for secret in secrets {
                    if text.contains(secret.as_str()) {
                        *text = text.replace(secret.as_str(), PLACEHOLDER);
                        *changed = true;
                    }
                }
                // A compressed stream in the string (`base64(gzip(…))`, hex of zlib) holding
                // one: the whole string, which cannot be masked inside.
                let inner = crate::model::encodings::embedded_inflated(text.as_bytes());
                if inner.iter().any(|bytes| {
                    (secrets.iter()).any(|s| memchr::memmem::find(bytes, s.as_bytes()).is_some())
                }) {
                    *text = PLACEHOLDER.to_owned();
                    *changed = true;
                }
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|i| strings(i, secrets, changed));
            }
            serde_json::Value::Object(map) => {
                map.values_mut().for_each(|i| strings(i, secrets, changed));
            }
            _ => {}
        }
    }
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&out) {
        let mut changed = !mask_json(&mut value).is_empty();
        strings(&mut value, &secrets, &mut changed);
        if changed {
            out = serde_json::to_vec(&value).expect("a value serialises");
        }
    }
    // And in every other encoding the leak gate knows (percent, HTML references, base64, hex,
    // UTF-16): a live answer may echo the token in any of them.
    let scanner = crate::secrets::leak::LeakScanner::new(secrets.iter().map(|s| {
        crate::secrets::leak::Needle {
            label: "the drift token".to_owned(),
            value: (*s).clone(),
        }
    }));
    if !scanner.is_empty() {
        out = scanner.masked(&out, PLACEHOLDER.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_over_the_cap_is_told_as_such_not_as_an_unreachable_upstream() {
        let too_large = RequestDrift {
            request: "GET /v2/images/x/file".into(),
            changes: Vec::new(),
            unchecked: Some(Unchecked::TooLarge("upstream sent a body larger than 10 bytes".into())),
            skipped: None,
        };
        let summary = unchecked_summary(&[too_large]).unwrap();
        assert!(summary.contains("--max-answer-body"), "{summary}");
        assert!(!summary.contains("could not be reached"), "{summary}");
    }

    #[test]
    fn the_report_lists_each_change_and_sums_up() {
        let long = format!(r#"{{"size":0,"min_disk":100,"name":"{}"}}"#, "x".repeat(80));
        let live = br#"{"size":"0","name":"y"}"#;
        let drift = |request: &str, changes, unchecked| RequestDrift {
            request: request.into(),
            changes,
            unchecked,
            skipped: None,
        };
        let skipped = RequestDrift {
            skipped: Some(Skipped::UnsafeMethod),
            ..drift("DELETE /v2/images/b", vec![], None)
        };
        let gaps = RequestDrift {
            skipped: Some(Skipped::OnlyGaps),
            ..drift("GET /v2/images/g", vec![], None)
        };
        let drifts = [
            drift(
                "GET /v2/images/a",
                compare(200, long.as_bytes(), 200, live, &IgnoreRules::default()),
                None,
            ),
            drift("GET /v2", vec![], None),
            drift("GET /x", vec![], Some(Unchecked::Unreachable("timeout".into()))),
            skipped.clone(),
            gaps.clone(),
        ];
        let expected = format!(
            "GET /v2/images/a : 3 changes (2 breaking)\n\
             \x20 changed-type  /size  (number 0 → string \"0\")\n\
             \x20 removed       /min_disk  (was number 100)\n\
             \x20 changed-value /name  (string \"{}… → string \"y\")\n\
             GET /v2 : no changes\n\
             GET /x : not checked: no answer: timeout\n\
             DELETE /v2/images/b : skipped: not a GET, HEAD, OPTIONS (--unsafe-methods sends it)\n\
             GET /v2/images/g : skipped: no answer of it was stored (the leak gate refused each \
             when it was recorded), so there is nothing to compare with\n\
             drift: 2 requests checked, 1 changed, 2 breaking; 1 not checked; 1 skipped (not a \
             GET, HEAD, OPTIONS: --unsafe-methods sends them); 1 skipped (no answer stored)\n",
            "x".repeat(59)
        );
        assert_eq!(render(&drifts), expected);
        // Skipped requests beside checked ones are no set-up problem; skipped alone are, since
        // a check that sent nothing must not pass.
        assert_eq!(unchecked_summary(&drifts[..2]), None);
        assert_eq!(unchecked_summary(&[drifts[1].clone(), skipped.clone()]), None);
        let nothing = unchecked_summary(&[skipped.clone(), skipped.clone()]).unwrap();
        assert!(
            nothing.starts_with("nothing was checked: all 2 recorded requests are not a GET"),
            "{nothing}"
        );
        assert!(nothing.contains("--unsafe-methods"), "{nothing}");
        // A request skipped for its gaps is no matter of methods.
        let nothing = unchecked_summary(&[skipped, gaps]).unwrap();
        assert!(nothing.starts_with("nothing was checked: every recorded request was skipped"), "{nothing}");
        assert!(!nothing.contains("--unsafe-methods"), "{nothing}");
    }

    #[test]
    fn only_safe_methods_are_sent_unless_all_are_asked_for() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            assert!(Sends::SafeOnly.sends(method), "{method}");
        }
        for method in ["DELETE", "POST", "PUT", "PATCH", "TRACE", "CONNECT", "PURGE", "get"] {
            assert!(!Sends::SafeOnly.sends(method), "{method}");
            assert!(Sends::All.sends(method), "{method}");
        }
    }

    #[test]
    fn drift_output_masks_the_token_sent_secrets_and_credential_fields() {
        let token = "drift-tok<123456";
        let body = br#"{"echo":"drift-tok\u003c123456","raw":"x drift-tok<123456 y","password":"pw-999999"}"#;
        let masked = String::from_utf8(mask_secrets(body, &[token.to_owned()])).unwrap();
        assert!(!masked.contains("123456"), "{masked}");
        assert!(!masked.contains("pw-999999"), "{masked}");
        // Echoed percent-encoded, HTML-escaped, in base64 or hex: each is masked too.
        use base64::Engine as _;
        let token = "tok+en/4711=";
        let base64 = base64::engine::general_purpose::STANDARD.encode(token);
        let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
        let body = format!(
            "<p>tok%2Ben%2F4711%3D tok&#43;en&#x2f;4711= {base64} {hex} kept</p>"
        );
        let masked = String::from_utf8(mask_secrets(body.as_bytes(), &[token.to_owned()])).unwrap();
        assert_eq!(masked, "<p>REDACTED REDACTED REDACTED REDACTED kept</p>");
        // Inside a compressed stream written as base64 in a JSON string: the whole string.
        let gzipped = {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(format!("tok={token}").as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let blob = base64::engine::general_purpose::STANDARD.encode(gzipped);
        let body = format!(r#"{{"state":"{blob}","kept":"x"}}"#);
        let masked = String::from_utf8(mask_secrets(body.as_bytes(), &[token.to_owned()])).unwrap();
        assert_eq!(masked, r#"{"state":"REDACTED","kept":"x"}"#);
    }
}
