//! Which values are secret and how they are replaced: the redaction policy (owner and account
//! fields, project headers, query parameters), consistent pseudonyms for every occurrence of
//! their values, the stamp a redacted recording carries, and the leak gate run before any write.

use std::collections::BTreeMap;

use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

use crate::model::headers::is_credential;
use crate::model::interaction::{Body, Interaction, RecordedRequest};
pub use crate::model::redaction::{RedactionPolicy, RedactionStamp};
use crate::secrets::leak::{Leak, LeakScanner, MIN_NEEDLE_LEN, Needle};
use crate::secrets::pseudonym::PseudonymKey;

/// Applies a policy with a key. Pure and deterministic.
#[derive(Clone, Debug)]
pub struct Redactor {
    policy: RedactionPolicy,
    key: PseudonymKey,
}

/// Real value → pseudonym, longest values first so a value inside another is replaced last.
struct Mapping(Vec<(String, String)>);

impl Redactor {
    /// A redactor for `policy` with `key`.
    pub fn new(policy: RedactionPolicy, key: PseudonymKey) -> Self {
        Redactor { policy, key }
    }

    /// The stamp this redactor puts on what it redacts.
    pub fn stamp(&self) -> RedactionStamp {
        RedactionStamp {
            policy: self.policy.clone(),
            key_fingerprint: self.key.fingerprint(),
        }
    }

    /// The policy.
    #[cfg(any(test, feature = "internals"))]
    pub fn policy(&self) -> &RedactionPolicy {
        &self.policy
    }

    /// Redacts one interaction and stamps it. Returns the redacted copy and the real values that
    /// were replaced (for the leak gate). An interaction already stamped with this key is
    /// redacted only for the names its stamp lacks, so redaction is idempotent.
    pub fn redact(&self, interaction: &Interaction) -> Result<(Interaction, Vec<Needle>), String> {
        let policy = match &interaction.redaction {
            None => self.policy.clone(),
            Some(stamp) if stamp.key_fingerprint == self.key.fingerprint() => RedactionPolicy {
                fields: missing(&self.policy.fields, &stamp.policy.fields),
                headers: missing(&self.policy.headers, &stamp.policy.headers),
                query: missing(&self.policy.query, &stamp.policy.query),
            },
            Some(stamp) => {
                return Err(format!(
                    "already redacted with key {}, not with this key {}; redacting again would break \
                     pseudonym consistency (set IMS_VCR_REDACT_KEY to the key it was recorded with)",
                    stamp.key_fingerprint,
                    self.key.fingerprint()
                ));
            }
        };
        let mut values = BTreeMap::new();
        collect_request(&policy, &interaction.request, &mut values);
        collect_headers(&policy, &interaction.response.headers, &mut values);
        collect_body(&policy, &interaction.response.body, &mut values);
        let mapping = self.mapping(values.keys());
        let mut out = interaction.clone();
        redact_request_with(&policy, &mapping, &self.key, &mut out.request);
        redact_headers(&policy, &mapping, &self.key, &mut out.response.headers);
        redact_body(&policy, &mapping, &self.key, &mut out.response.body);
        let mut stamp = self.stamp();
        if let Some(old) = &interaction.redaction {
            stamp
                .policy
                .extend(&old.policy.fields, &old.policy.headers, &old.policy.query);
        }
        out.redaction = Some(stamp);
        let needles = values
            .into_iter()
            .map(|(value, label)| Needle { label, value })
            .collect();
        Ok((out, needles))
    }

    /// The request as it would have been stored: how replay matches a client that sends real
    /// values against recordings holding pseudonyms.
    pub fn redact_request(&self, request: &RecordedRequest) -> RecordedRequest {
        let mut values = BTreeMap::new();
        collect_request(&self.policy, request, &mut values);
        let mapping = self.mapping(values.keys());
        let mut out = request.clone();
        redact_request_with(&self.policy, &mapping, &self.key, &mut out);
        out
    }

    fn mapping<'a>(&self, values: impl Iterator<Item = &'a String>) -> Mapping {
        let mut pairs: Vec<(String, String)> =
            values.map(|v| (v.clone(), self.key.pseudonym(v))).collect();
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Mapping(pairs)
    }
}

fn missing(wanted: &[String], done: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !done.iter().any(|d| d.eq_ignore_ascii_case(w)))
        .cloned()
        .collect()
}

// ---- collecting the real values -------------------------------------------------------------

type Values = BTreeMap<String, String>; // value → label (what it was found as)

fn note(values: &mut Values, value: &str, label: impl FnOnce() -> String) {
    if !value.is_empty() && !values.contains_key(value) {
        values.insert(value.to_owned(), label());
    }
}

fn collect_request(policy: &RedactionPolicy, request: &RecordedRequest, values: &mut Values) {
    collect_headers(policy, &request.headers, values);
    if let Some(query) = &request.query {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if policy.query.iter().any(|q| *q == name) {
                note(values, &value, || format!("query parameter {name}"));
            }
        }
    }
    collect_body(policy, &request.body, values);
}

fn collect_headers(policy: &RedactionPolicy, headers: &[(String, String)], values: &mut Values) {
    for (name, value) in headers {
        if policy.is_header(name) {
            note(values, value, || format!("header {name}"));
        }
    }
}

fn collect_body(policy: &RedactionPolicy, body: &Option<Body>, values: &mut Values) {
    match body {
        Some(Body::Json(json)) => collect_json(policy, json, values),
        Some(Body::Text(text)) => {
            if let Ok(json) = serde_json::from_str::<Value>(text) {
                collect_json(policy, &json, values);
            }
        }
        _ => {}
    }
}

fn collect_json(policy: &RedactionPolicy, json: &Value, values: &mut Values) {
    match json {
        Value::Object(map) => {
            for (name, value) in map {
                match value {
                    Value::String(s) if policy.fields.contains(name) => {
                        note(values, s, || format!("field {name}"));
                    }
                    other => collect_json(policy, other, values),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_json(policy, i, values)),
        _ => {}
    }
}

// ---- replacing them -------------------------------------------------------------------------

/// Replaces every occurrence (raw and percent-encoded) of each mapped value in `text`. Values
/// shorter than [`MIN_NEEDLE_LEN`] are only replaced where they are a whole field, header or
/// parameter value: as substrings they would mangle unrelated text.
fn replace_occurrences(mapping: &Mapping, text: &str) -> String {
    let mut out = text.to_owned();
    for (real, fake) in &mapping.0 {
        if real.len() < MIN_NEEDLE_LEN {
            continue;
        }
        replace_all(&mut out, real, fake);
        let encoded = utf8_percent_encode(real, NON_ALPHANUMERIC).to_string();
        if encoded != *real {
            let fake = utf8_percent_encode(fake, NON_ALPHANUMERIC).to_string();
            replace_all(&mut out, &encoded, &fake);
        }
    }
    out
}

/// Replaces `from` until none is left. One pass is not always enough: in `::x1::x1::` the
/// pseudonym of the first `::x1::` keeps the `::` it shares with the second, which forms again.
/// Each pass rewrites letters or digits, so this ends; the bound only guards the loop.
fn replace_all(text: &mut String, from: &str, to: &str) {
    let mut passes = text.len() / from.len().max(1) + 1;
    while from != to && passes > 0 && text.contains(from) {
        *text = text.replace(from, to);
        passes -= 1;
    }
}

fn redact_request_with(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    key: &PseudonymKey,
    request: &mut RecordedRequest,
) {
    request.path = replace_occurrences(mapping, &request.path);
    if let Some(query) = &request.query {
        request.query = Some(redact_query(policy, mapping, key, query));
    }
    redact_headers(policy, mapping, key, &mut request.headers);
    redact_body(policy, mapping, key, &mut request.body);
}

/// Pair by pair, keeping order and the encoding of untouched pairs.
fn redact_query(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    key: &PseudonymKey,
    query: &str,
) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded_name = percent_decode_str(&name.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            if policy.query.contains(&decoded_name) {
                let decoded = percent_decode_str(&value.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned();
                let fake = key.pseudonym(&decoded);
                format!("{name}={}", utf8_percent_encode(&fake, NON_ALPHANUMERIC))
            } else {
                replace_occurrences(mapping, pair)
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn redact_headers(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    key: &PseudonymKey,
    headers: &mut [(String, String)],
) {
    for (name, value) in headers.iter_mut() {
        *value = if policy.is_header(name) {
            key.pseudonym(value)
        } else {
            replace_occurrences(mapping, value)
        };
    }
}

fn redact_body(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    key: &PseudonymKey,
    body: &mut Option<Body>,
) {
    match body {
        Some(Body::Json(json)) => redact_json(policy, mapping, key, json),
        Some(Body::Text(text)) => *text = replace_occurrences(mapping, text),
        Some(Body::Base64(b64)) => {
            // Binary bodies are rewritten only when they are really text in disguise.
            let engine = base64::engine::general_purpose::STANDARD;
            if let Some(text) = engine
                .decode(b64.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                *b64 = engine.encode(replace_occurrences(mapping, &text));
            }
        }
        None => {}
    }
}

fn redact_json(policy: &RedactionPolicy, mapping: &Mapping, key: &PseudonymKey, json: &mut Value) {
    match json {
        Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                match value {
                    Value::String(s) if policy.fields.contains(name) => *s = key.pseudonym(s),
                    other => redact_json(policy, mapping, key, other),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| redact_json(policy, mapping, key, i)),
        Value::String(s) => *s = replace_occurrences(mapping, s),
        _ => {}
    }
}

// ---- the leak gate --------------------------------------------------------------------------

/// Credential values a request carried, as needles for the leak gate: each credential header's
/// whole value, plus the secret parts inside it: the access key and signature of an AK/SK
/// `Authorization` (not its `SignedHeaders` list, which names ordinary headers), the credential
/// of a `Bearer`/`Basic` one, and each cookie value.
pub fn credential_needles(headers: &hyper::HeaderMap) -> Vec<Needle> {
    let mut needles = Vec::new();
    for (name, value) in headers {
        if !is_credential(name.as_str()) {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let label = format!("credential header {name}");
        let mut push = |v: &str| {
            let v = v.trim();
            if !v.is_empty() {
                needles.push(Needle {
                    label: label.clone(),
                    value: v.to_owned(),
                });
            }
        };
        push(value);
        match name.as_str() {
            "authorization" | "proxy-authorization" => {
                let (scheme, rest) = value.split_once(' ').unwrap_or(("", value));
                if scheme.contains("HMAC") {
                    for (k, v) in rest.split(',').filter_map(|p| p.trim().split_once('=')) {
                        if matches!(k, "Access" | "Signature" | "Credential") {
                            push(v);
                        }
                    }
                } else {
                    push(rest);
                    // Basic carries `user:password` in base64: the decoded pair and the password
                    // alone are secrets too.
                    if scheme.eq_ignore_ascii_case("basic")
                        && let Ok(decoded) =
                            base64::engine::general_purpose::STANDARD.decode(rest.trim())
                        && let Ok(pair) = String::from_utf8(decoded)
                    {
                        push(&pair);
                        if let Some((_, password)) = pair.split_once(':') {
                            push(password);
                        }
                    }
                }
            }
            "cookie" => rest_values(value, ';').for_each(push),
            "set-cookie" => rest_values(value, ';').take(1).for_each(push),
            _ => {}
        }
    }
    needles
}

/// The interaction with every credential outside the named headers masked (see
/// [`crate::model::credentials`]): credential query parameters and request-body fields hold
/// [`PLACEHOLDER`](crate::model::credentials::PLACEHOLDER), and the recorded origin has no user
/// information. Returns the masked copy and the real values as needles for the leak gate, or
/// `None` when there is nothing to mask.
pub fn mask_credentials(interaction: &Interaction) -> Option<(Interaction, Vec<Needle>)> {
    use crate::model::credentials::{Found, mask_body, mask_query, strip_userinfo};
    let request = &interaction.request;
    let query = request.query.as_deref().and_then(mask_query);
    let body = match &request.body {
        // Binary bodies cannot be rewritten field by field.
        None | Some(Body::Base64(_)) => None,
        Some(body) => {
            let bytes = body.to_bytes().ok()?;
            let content_type = request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            mask_body(&bytes, content_type)
        }
    };
    let (upstream, userinfo) = strip_userinfo(&interaction.response.upstream);
    if query.is_none() && body.is_none() && userinfo.is_none() {
        return None;
    }
    let mut out = interaction.clone();
    let mut found: Vec<Found> = Vec::new();
    if let Some((masked, values)) = query {
        out.request.query = Some(masked);
        found.extend(values);
    }
    if let Some((masked, values)) = body {
        out.request.body = Body::from_bytes(&masked);
        found.extend(values);
    }
    if let Some(userinfo) = userinfo {
        out.response.upstream = upstream;
        let label = "user information of the upstream URL".to_owned();
        if let Some((_, password)) = userinfo.split_once(':') {
            found.push(Found {
                label: label.clone(),
                value: decode_userinfo(password),
            });
        }
        found.push(Found {
            label,
            value: decode_userinfo(&userinfo),
        });
    }
    let needles = found
        .into_iter()
        .filter(|f| !f.value.is_empty())
        .map(|f| Needle {
            label: f.label,
            value: f.value,
        })
        .collect();
    Some((out, needles))
}

fn decode_userinfo(part: &str) -> String {
    percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// The values of `k=v` pairs separated by `separator`.
fn rest_values(text: &str, separator: char) -> impl Iterator<Item = &str> {
    text.split(separator)
        .filter_map(|p| p.split_once('=').map(|(_, v)| v))
}

/// The first secret still present in what is about to be written, if any.
pub fn find_leak(interaction: &Interaction, needles: Vec<Needle>) -> Option<Leak> {
    let scanner = LeakScanner::new(needles);
    if scanner.is_empty() {
        return None;
    }
    let bytes = serde_json::to_vec(interaction).expect("an interaction serialises");
    if let Some(leak) = scanner.find(&bytes) {
        return Some(leak);
    }
    // The serialised form escapes a text body once more (`\u003c` becomes `\\u003c`), and a
    // base64 body hides compressed bytes: scan each body as the bytes it stands for, and each
    // gzip/zlib layer inside them.
    for body in [&interaction.request.body, &interaction.response.body] {
        let Ok(mut bytes) = crate::model::interaction::body_bytes(body).map(|b| b.to_vec()) else {
            continue;
        };
        for _ in 0..4 {
            if let Some(leak) = scanner.find(&bytes) {
                return Some(leak);
            }
            match inflate(&bytes) {
                Some(inner) => bytes = inner,
                None => break,
            }
        }
    }
    None
}

/// The bytes inside a gzip or zlib stream (capped at 64 MiB), or `None` when `bytes` is not one.
fn inflate(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read as _;
    const CAP: u64 = 64 << 20;
    let mut out = Vec::new();
    let read = match bytes {
        [0x1f, 0x8b, ..] => flate2::read::MultiGzDecoder::new(bytes)
            .take(CAP)
            .read_to_end(&mut out),
        [0x78, second, ..] if (u16::from(bytes[0]) << 8 | u16::from(*second)) % 31 == 0 => {
            flate2::read::ZlibDecoder::new(bytes).take(CAP).read_to_end(&mut out)
        }
        _ => return None,
    };
    // A stream cut short still yields what it decoded, and that is what must be scanned.
    (read.is_ok() || !out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interaction::RecordedResponse;

    const OWNER: &str = "1bed856811654c1cb661a6ca845ebc77";

    fn redactor() -> Redactor {
        Redactor::new(RedactionPolicy::default(), PseudonymKey::new(b"test-key"))
    }

    fn interaction(path: &str, query: Option<&str>, body: &str) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: "GET".into(),
                path: path.into(),
                query: query.map(str::to_owned),
                headers: vec![("x-project-id".into(), OWNER.into())],
                body: None,
                session: None,
            },
            response: RecordedResponse {
                status: 200,
                headers: vec![("link".into(), format!("</v2/images?owner={OWNER}>"))],
                body: Body::from_bytes(body.as_bytes()),
                recorded_at: String::new(),
                latency_ms: 0,
                upstream: String::new(),
            },
            redaction: None,
        }
    }

    fn text(i: &Interaction) -> String {
        serde_json::to_string(i).unwrap()
    }

    #[test]
    fn owner_is_replaced_everywhere_with_one_consistent_pseudonym() {
        let body = format!(
            r#"{{"images":[{{"owner":"{OWNER}","self":"https://x/v3/{OWNER}/images","__account_code":"acct_Z9"}},{{"owner":"{OWNER}"}}]}}"#
        );
        let original = interaction(
            &format!("/v3/{OWNER}/images"),
            Some(&format!("owner={OWNER}&limit=2")),
            &body,
        );
        let (redacted, needles) = redactor().redact(&original).unwrap();
        let all = text(&redacted);
        assert!(!all.contains(OWNER), "{all}");
        assert!(!all.contains("acct_Z9"), "{all}");
        let fake = PseudonymKey::new(b"test-key").pseudonym(OWNER);
        assert_eq!(redacted.request.path, format!("/v3/{fake}/images"));
        assert_eq!(
            redacted.request.query.as_deref(),
            Some(format!("owner={fake}&limit=2").as_str())
        );
        assert_eq!(redacted.request.headers[0].1, fake);
        let Some(Body::Json(json)) = &redacted.response.body else {
            panic!()
        };
        assert_eq!(
            json["images"][0]["owner"], json["images"][1]["owner"],
            "shared owner stays shared"
        );
        assert_eq!(json["images"][0]["owner"], fake.as_str());
        assert!(needles.iter().any(|n| n.value == OWNER));
        assert!(find_leak(&redacted, needles).is_none());
    }

    #[test]
    fn redaction_is_idempotent_and_stamped() {
        let original = interaction(
            "/v2/images",
            Some(&format!("owner={OWNER}")),
            &format!(r#"{{"owner":"{OWNER}"}}"#),
        );
        let (once, _) = redactor().redact(&original).unwrap();
        let (twice, _) = redactor().redact(&once).unwrap();
        assert_eq!(once, twice);
        let stamp = once.redaction.unwrap();
        assert_eq!(
            stamp.key_fingerprint,
            PseudonymKey::new(b"test-key").fingerprint()
        );
        assert!(!text(&twice).contains("test-key"));
    }

    #[test]
    fn a_different_key_refuses_to_redact_again() {
        let original = interaction("/v2", None, "{}");
        let (once, _) = redactor().redact(&original).unwrap();
        let other = Redactor::new(RedactionPolicy::default(), PseudonymKey::new(b"other"));
        assert!(
            other
                .redact(&once)
                .unwrap_err()
                .contains("IMS_VCR_REDACT_KEY")
        );
    }

    #[test]
    fn a_request_with_real_values_redacts_to_the_stored_request() {
        let original = interaction(
            &format!("/v3/{OWNER}/x"),
            Some(&format!("owner={OWNER}")),
            "{}",
        );
        let (stored, _) = redactor().redact(&original).unwrap();
        assert_eq!(redactor().redact_request(&original.request), stored.request);
    }

    #[test]
    fn a_value_overlapping_itself_is_replaced_everywhere() {
        // Found by the redaction fuzz target: one pass of `str::replace` over `::x1::x1::`
        // replaces the first `::x1::`, and the pseudonym keeps the `::` it shares with the
        // second, which forms again.
        let mut original = interaction("/v2", None, "::x1::x1::");
        original.request.headers = vec![("x-project-id".into(), "::x1::".into())];
        original.response.headers = vec![("link".into(), "</v2/::x1::x1::>".into())];
        let (redacted, needles) = redactor().redact(&original).unwrap();
        assert!(!text(&redacted).contains("::x1::"), "{}", text(&redacted));
        assert!(find_leak(&redacted, needles).is_none());
    }

    #[test]
    fn credential_needles_cover_the_access_key_and_signature() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            "authorization",
            "SDK-HMAC-SHA256 Access=HPUAKEY1234, SignedHeaders=content-type;host;x-project-id, Signature=abcdef0123"
                .parse()
                .unwrap(),
        );
        headers.insert("x-project-id", "not-a-credential".parse().unwrap());
        let values: Vec<String> = credential_needles(&headers)
            .into_iter()
            .map(|n| n.value)
            .collect();
        assert!(values.contains(&"HPUAKEY1234".to_string()));
        assert!(values.contains(&"abcdef0123".to_string()));
        assert!(!values.iter().any(|v| v.contains("not-a-credential")));
    }

    #[test]
    fn the_leak_gate_finds_a_token_smuggled_into_a_body() {
        let token = "gAAAAABtoken-smuggled-123";
        let leaky = interaction("/v2", None, &format!(r#"{{"echo":"{token}"}}"#));
        let needles = vec![Needle {
            label: "credential header x-auth-token".into(),
            value: token.into(),
        }];
        let leak = find_leak(&leaky, needles).unwrap();
        assert_eq!(leak.label, "credential header x-auth-token");
    }
}
