//! Which values are secret and how they are replaced: the redaction policy (owner and account
//! fields, project headers, query parameters), consistent pseudonyms for every occurrence of
//! their values, the stamp a redacted recording carries, and the leak gate run before any write.

use std::collections::BTreeMap;

use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

use crate::model::headers::holds_file_bytes;
use crate::model::interaction::{Body, Interaction, RecordedRequest};
pub use crate::model::redaction::{RedactionPolicy, RedactionStamp};
use crate::secrets::leak::{MIN_NEEDLE_LEN, Needle};
use crate::secrets::pseudonym::{PseudonymKey, other_uuid_form};
use crate::secrets::policy_values::{Values, collect_request, policy_values};
use crate::secrets::vouch;

mod aligned;
mod known;
#[cfg(any(test, feature = "internals"))]
pub use crate::secrets::leak_check::find_leak;
pub use crate::secrets::exposure::credential_needles;

/// Applies a policy with a key, deterministically. It remembers every value it selected
/// (shared by its clones), so a value selected in one interaction (a project id in a token
/// answer) is replaced by its pseudonym in every later one too, wherever it appears (a path, a
/// catalog URL), not only where a policy name selects it.
#[derive(Clone, Debug)]
pub struct Redactor {
    policy: RedactionPolicy,
    key: PseudonymKey,
    /// Values selected so far → what they were found as. Held only to read or extend.
    known: std::sync::Arc<std::sync::Mutex<Values>>,
    /// Whether a stamp without pseudonym checks gets them for the values it holds now.
    vouch_existing: bool,
    /// The pseudonyms interactions redacted with this key hold under the policy's names, as
    /// [`Redactor::learn`] found them: an id-like value elsewhere whose pseudonym is among them
    /// is the real value of a redacted field (see [`Redactor::known_in`]).
    pseudonyms: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Real value → pseudonym, longest values first so a value inside another is replaced last.
struct Mapping(Vec<(String, String)>);

impl Mapping {
    /// The pseudonym of `value` when it is a mapped value.
    fn get(&self, value: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(real, _)| real == value)
            .map(|(_, fake)| fake.as_str())
    }
}

/// What replaces a value where a policy name selects it: its pseudonym, or, in the pass over the
/// names a stamp already covers, its pseudonym only when it is one of the mapped values (a raw
/// value the stamp does not vouch for), leaving the pseudonyms around it as they are.
enum At<'a> {
    Pseudonym(&'a PseudonymKey),
    MappedOnly(&'a Mapping),
}

impl At<'_> {
    fn replace(&self, value: &str) -> String {
        match self {
            At::Pseudonym(_) if crate::secrets::policy_values::is_generic_name(value) => value.to_owned(),
            At::Pseudonym(key) => key.pseudonym(value),
            At::MappedOnly(mapping) => mapping.get(value).unwrap_or(value).to_owned(),
        }
    }
}

impl Redactor {
    /// A redactor for `policy` with `key`.
    pub fn new(policy: RedactionPolicy, key: PseudonymKey) -> Self {
        Redactor {
            policy,
            key,
            known: Default::default(),
            vouch_existing: false,
            pseudonyms: Default::default(),
        }
    }

    /// Gives a stamp written before pseudonym checks existed the checks of the values it holds
    /// now (`export --vouch-existing`): the user's word that those values are pseudonyms (they
    /// reviewed them, or `verify --deny-file` passes). Without it such a stamp keeps no checks,
    /// and `verify --require-redaction` keeps saying its content cannot be checked.
    pub fn vouching_existing(mut self, vouch: bool) -> Self {
        self.vouch_existing = vouch;
        self
    }

    /// Remembers the values `interaction` holds under the policy without redacting it, so
    /// redacting any interaction afterwards replaces them too (an export learns the whole store
    /// first, so a value is replaced even where it appears before the answer that names it).
    pub fn learn(&self, interaction: &Interaction) {
        // Names an earlier redaction with this key covered hold pseudonyms, not values.
        let Ok(policy) = self.policy_for(interaction) else {
            return;
        };
        if interaction.redaction.is_some() {
            // What the names its stamp covers hold: pseudonyms (or values its checks do not
            // vouch for, found below), ids among them to tell real values elsewhere by.
            let held = policy_values(&self.policy, interaction);
            let mut pseudonyms = self.pseudonyms.lock().expect("no code panics while holding the pseudonyms");
            pseudonyms.extend(held.into_keys().filter(|v| is_id_like(v)));
        }
        let mut values = policy_values(&policy, interaction);
        if let Some(stamp) = &interaction.redaction {
            values.extend(vouch::unvouched(stamp, interaction).unwrap_or_default());
        }
        self.remember(values);
    }

    /// The policy still to apply to `interaction`: all of it, or (stamped with this key) the
    /// names its stamp lacks; an error when it was redacted with another key.
    fn policy_for(&self, interaction: &Interaction) -> Result<RedactionPolicy, String> {
        match &interaction.redaction {
            None => Ok(self.policy.clone()),
            Some(stamp) if stamp.key_fingerprint == self.key.fingerprint() => Ok(RedactionPolicy {
                fields: missing(&self.policy.fields, &stamp.policy.fields),
                headers: missing(&self.policy.headers, &stamp.policy.headers),
                query: missing(&self.policy.query, &stamp.policy.query),
            }),
            Some(stamp) => Err(format!(
                "already redacted with key {}, not with this key {}; redacting again would break \
                 pseudonym consistency (set IMS_VCR_REDACT_KEY to the key it was recorded with)",
                stamp.key_fingerprint,
                self.key.fingerprint()
            )),
        }
    }

    fn remember(&self, values: Values) {
        let mut known = self.known.lock().expect("no code panics while holding the known values");
        for (value, label) in values {
            known.entry(value).or_insert(label);
        }
    }

    /// The stamp this redactor puts on what it redacts.
    pub fn stamp(&self) -> RedactionStamp {
        RedactionStamp {
            policy: self.policy.clone(),
            key_fingerprint: self.key.fingerprint(),
            pseudonym_checks: None,
        }
    }

    /// The pseudonym key.
    pub fn key(&self) -> &PseudonymKey {
        &self.key
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
        let policy = self.policy_for(interaction)?;
        let mut values = policy_values(&policy, interaction);
        // Under names a stamp of this key covers, a value its checks do not vouch for was put
        // there after it was written (a raw owner pasted into a cassette): redact it too.
        let unvouched = interaction
            .redaction
            .as_ref()
            .and_then(|stamp| vouch::unvouched(stamp, interaction))
            .unwrap_or_default();
        for (value, label) in &unvouched {
            values.entry(value.clone()).or_insert(label.clone());
        }
        // Values other interactions taught, where this one holds them (store-wide redaction).
        for (value, label) in self.known_in(interaction) {
            values.entry(value).or_insert(label);
        }
        self.remember(values.clone());
        let mapping = self.mapping(values.keys());
        let mut out = interaction.clone();
        redact_interaction(&policy, &mapping, &At::Pseudonym(&self.key), &mut out);
        if let Some(old) = interaction.redaction.as_ref().filter(|_| !unvouched.is_empty()) {
            // By position, as a first redaction would: a number, a short query value.
            redact_interaction(&old.policy, &mapping, &At::MappedOnly(&mapping), &mut out);
            let left = policy_values(&old.policy, &out);
            if let Some((_, label)) = unvouched.iter().find(|(v, _)| left.contains_key(*v)) {
                return Err(format!(
                    "{label} holds a value its redaction stamp does not vouch for, and it could \
                     not be replaced"
                ));
            }
        }
        let mut stamp = self.stamp();
        if let Some(old) = &interaction.redaction {
            stamp
                .policy
                .extend(&old.policy.fields, &old.policy.headers, &old.policy.query);
        }
        // A stamp without checks (written before they existed) vouched for nothing: its values
        // were never checked, so they are not vouched for now unless the user says so.
        let unchecked = interaction
            .redaction
            .as_ref()
            .is_some_and(|old| old.pseudonym_checks.is_none());
        stamp.pseudonym_checks = (!unchecked || self.vouch_existing)
            .then(|| vouch::checks_of(&stamp.policy, &out));
        out.redaction = Some(stamp);
        let needles = values
            .into_iter()
            .map(|(value, label)| Needle { label, value })
            .collect();
        Ok((out, needles))
    }

    /// `text` (a message naming a recording) with every value this redactor knows replaced by
    /// its pseudonym.
    pub fn pseudonymised(&self, text: &str) -> String {
        let known = self.known.lock().expect("no code panics while holding the known values");
        replace_occurrences(&self.mapping(known.keys()), text)
    }

    /// The request as it would have been stored: how replay matches a client that sends real
    /// values against recordings holding pseudonyms.
    ///
    /// Also returns the values it read under the policy's names and those earlier requests
    /// taught ([`Redactor::confirm`]) that it holds elsewhere: a project id a sign-in's scope
    /// named, sent again as an image member's `member` or a `?domain_id=`.
    pub fn redact_request(&self, request: &RecordedRequest) -> (RecordedRequest, BTreeMap<String, String>) {
        let mut values = BTreeMap::new();
        collect_request(&self.policy, request, &mut values);
        let known = self.known.lock().expect("no code panics while holding the known values");
        if !known.is_empty() {
            let text = serde_json::to_string(request).expect("a request serialises");
            for (value, label) in known.iter() {
                if value.len() >= MIN_NEEDLE_LEN && appears(&text, value) {
                    values.entry(value.clone()).or_insert_with(|| label.clone());
                }
            }
        }
        drop(known);
        let mapping = self.mapping(values.keys());
        let mut out = request.clone();
        redact_request_with(&self.policy, &mapping, &At::Pseudonym(&self.key), &mut out);
        (out, values)
    }

    /// The requests `request` (already [`Redactor::redact_request`]ed) may have been stored as
    /// when it holds a redacted value in a place the policy does not name and this redactor
    /// has not learned: a project id in `/v1/{project_id}/cloudimages` sent without an
    /// `X-Project-Id`, an image member's `{"member": "<project id>"}`, a `?domain_id=` (export
    /// replaced such a value wherever a recording held it). The candidates are the path's
    /// segments of 8 characters or more with a digit in them and the id-like values (16 or more hex digits, dashes
    /// allowed) of its query and JSON body, at most [`MAX_ID_CANDIDATES`]; each variant has a
    /// subset of them replaced by their pseudonyms, the smallest subsets first (an image's own
    /// id in the same request was not redacted). Each comes with the values it replaced (real
    /// ones, should it match: [`Redactor::confirm`]).
    pub fn id_variants(&self, request: &RecordedRequest) -> Vec<(RecordedRequest, Vec<String>)> {
        let mut candidates: Vec<String> = Vec::new();
        let mut add = |value: String| {
            if !candidates.contains(&value) && candidates.len() < MAX_ID_CANDIDATES {
                candidates.push(value);
            }
        };
        // Path segments with a digit: a route's words (`cloudimages`) take no candidate's place.
        (request.path.split('/'))
            .filter(|s| s.len() >= 8 && s.bytes().any(|b| b.is_ascii_digit()))
            .for_each(|s| add(s.to_owned()));
        let query = request.query.as_deref().unwrap_or_default();
        (form_urlencoded::parse(query.as_bytes()))
            .filter(|(_, v)| is_id_like(v))
            .for_each(|(_, v)| add(v.into_owned()));
        if let Some(json) = request.body.as_ref().and_then(|b| b.json()) {
            id_strings(json, &mut add);
        }
        let empty = RedactionPolicy { fields: vec![], headers: vec![], query: vec![] };
        let mut subsets: Vec<u32> = (1..1u32 << candidates.len()).collect();
        subsets.sort_by_key(|set| set.count_ones());
        subsets
            .into_iter()
            .filter_map(|set| {
                let real: Vec<String> = (0..candidates.len())
                    .filter(|i| set & (1 << i) != 0)
                    .map(|i| candidates[i].clone())
                    .collect();
                let mapping = self.mapping(real.iter());
                let mut variant = request.clone();
                redact_request_with(&empty, &mapping, &At::MappedOnly(&mapping), &mut variant);
                (variant != *request).then_some((variant, real))
            })
            .collect()
    }

    /// Remembers `values`, real ones a request carried ([`Redactor::redact_request`],
    /// [`Redactor::id_variants`]) that matched a recording once pseudonymised (not
    /// pseudonyms a client sent back): replay then maps them wherever a later request holds
    /// them, as export replaced them wherever a recording did.
    pub fn confirm(&self, values: impl IntoIterator<Item = (String, String)>) {
        self.remember(values.into_iter().collect());
    }

    fn mapping<'a>(&self, values: impl Iterator<Item = &'a String>) -> Mapping {
        let mut pairs: Vec<(String, String)> =
            values.map(|v| (v.clone(), self.key.pseudonym(v))).collect();
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Mapping(pairs)
    }
}

/// The most values [`Redactor::id_variants`] tries as pseudonyms (their subsets: 31 lookups).
const MAX_ID_CANDIDATES: usize = 5;

/// Every id-like string value in `json` ([`is_id_like`]).
fn id_strings(json: &Value, add: &mut impl FnMut(String)) {
    match json {
        Value::String(s) if is_id_like(s) => add(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| id_strings(i, add)),
        Value::Object(map) => map.values().for_each(|v| id_strings(v, add)),
        _ => {}
    }
}

/// True when `value` is in `text` raw, percent-encoded or JSON-escaped.
/// Whether `value` reads as an id (16 or more hex digits, dashes allowed: an owner, project or
/// domain id, a UUID): only such values are looked for in binary bodies. A name (`ubuntu`, a
/// user's) may be in any disk image by chance, and a long file scanned for every remembered
/// value costs time.
fn is_id_like(value: &str) -> bool {
    value.len() >= 16 && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn appears(text: &str, value: &str) -> bool {
    text.contains(value)
        || text.contains(&utf8_percent_encode(value, NON_ALPHANUMERIC).to_string())
        || serde_json::to_string(value).is_ok_and(|q| text.contains(q.trim_matches('"')))
}

fn missing(wanted: &[String], done: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !done.iter().any(|d| d.eq_ignore_ascii_case(w)))
        .cloned()
        .collect()
}

/// The scalars a selected field holds (see [`policy_values`]: every string and number inside a
/// number or an array) replaced by their pseudonyms, keeping each one's JSON type (a number's
/// pseudonym is digits, so it stays a number). An object in such an array is redacted as any
/// object is, under the field `name` (`{"owner": ["…", {"owner": "…"}]}`).
fn redact_scalars(policy: &RedactionPolicy, name: &str, mapping: &Mapping, at: &At<'_>, json: &mut Value) {
    match json {
        Value::String(s) => *s = at.replace(s),
        Value::Number(n) => {
            let real = n.to_string();
            let fake = at.replace(&real);
            if fake == real {
                return;
            }
            *json = serde_json::from_str::<Value>(&fake)
                .ok()
                .filter(Value::is_number)
                .unwrap_or(Value::String(fake));
        }
        Value::Array(items) => (items.iter_mut()).for_each(|i| redact_scalars(policy, name, mapping, at, i)),
        Value::Object(_) => redact_json_in(policy, Some(name), mapping, at, json),
        Value::Bool(_) | Value::Null => {}
    }
}

// ---- replacing them -------------------------------------------------------------------------

/// Replaces every occurrence (raw and percent-encoded) of each mapped value in `text`. Values
/// shorter than [`MIN_NEEDLE_LEN`] are only replaced where they are a whole field, header or
/// parameter value: as substrings they would mangle unrelated text.
fn replace_occurrences(mapping: &Mapping, text: &str) -> String {
    // A whole value that is a mapped one is replaced whatever its length.
    if let Some(fake) = mapping.get(text) {
        return fake.to_owned();
    }
    let mut out = text.to_owned();
    for (real, fake) in &mapping.0 {
        if real.len() < MIN_NEEDLE_LEN {
            // Short: only where it is a whole JSON string (`"owner": "ab12"` in a body stored as
            // text); as a bare substring it would mangle unrelated text.
            replace_all(&mut out, &format!("\"{real}\""), &format!("\"{fake}\""));
            continue;
        }
        replace_all(&mut out, real, fake);
        // An upper-cased copy (a project id in a header or a log line) is the same identifier.
        let (upper, fake_upper) = (real.to_uppercase(), fake.to_uppercase());
        if upper != *real {
            replace_all(&mut out, &upper, &fake_upper);
        }
        let encoded = utf8_percent_encode(real, NON_ALPHANUMERIC).to_string();
        if encoded != *real {
            let fake = utf8_percent_encode(fake, NON_ALPHANUMERIC).to_string();
            replace_all(&mut out, &encoded, &fake);
        }
        // A 32-hex id written as a UUID (a Keystone id a service renders with dashes), or a
        // UUID without its dashes: the same identifier, either case.
        if let (Some(other), Some(fake_other)) = (other_uuid_form(real), other_uuid_form(fake)) {
            replace_all(&mut out, &other, &fake_other);
            replace_all(&mut out, &other.to_uppercase(), &fake_other.to_uppercase());
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

/// [`policy_values`]'s counterpart: every value `policy` names in `interaction` replaced as `at`
/// says, and the mapped values replaced wherever else they occur.
fn redact_interaction(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    at: &At<'_>,
    interaction: &mut Interaction,
) {
    redact_request_with(policy, mapping, at, &mut interaction.request);
    let response = &mut interaction.response;
    redact_headers(policy, mapping, at, &mut response.headers);
    let file = holds_file_bytes(&response.headers);
    redact_body(policy, mapping, at, &mut response.body, file);
}

fn redact_request_with(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    at: &At<'_>,
    request: &mut RecordedRequest,
) {
    request.path = replace_occurrences(mapping, &request.path);
    if let Some(query) = &request.query {
        request.query = Some(redact_query(policy, mapping, at, query));
    }
    redact_headers(policy, mapping, at, &mut request.headers);
    let file = holds_file_bytes(&request.headers);
    redact_body(policy, mapping, at, &mut request.body, file);
}

/// Pair by pair, keeping order and the encoding of untouched pairs.
fn redact_query(
    policy: &RedactionPolicy,
    mapping: &Mapping,
    at: &At<'_>,
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
                let fake = at.replace(&decoded);
                if fake == decoded {
                    // Left as it is (a pseudonym in the pass over covered names): its bytes too.
                    pair.to_owned()
                } else {
                    format!("{name}={}", utf8_percent_encode(&fake, NON_ALPHANUMERIC))
                }
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
    at: &At<'_>,
    headers: &mut [(String, String)],
) {
    for (name, value) in headers.iter_mut() {
        *value = if policy.is_header(name) {
            at.replace(value)
        } else {
            replace_occurrences(mapping, value)
        };
    }
}

/// `file`: the body is a file's bytes by its content type ([`holds_file_bytes`]), kept as it is
/// whatever it holds (its values join the leak gate's needles, [`Redactor::known_in`]).
fn redact_body(policy: &RedactionPolicy, mapping: &Mapping, at: &At<'_>, body: &mut Option<Body>, file: bool) {
    match body {
        _ if file => {}
        Some(Body::Json(json) | Body::JsonPython(json)) => redact_json(policy, mapping, at, json),
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

fn redact_json(policy: &RedactionPolicy, mapping: &Mapping, at: &At<'_>, json: &mut Value) {
    redact_json_in(policy, None, mapping, at, json);
}

fn redact_json_in(
    policy: &RedactionPolicy,
    parent: Option<&str>,
    mapping: &Mapping,
    at: &At<'_>,
    json: &mut Value,
) {
    match json {
        Value::Object(map) => {
            // An id used as a key (`{"quotas": {"<project id>": …}}`) is replaced as a value is,
            // in every form (upper case, as a UUID).
            // Ids have digits: most keys (`name`, `status`) are not rewritten to be looked at.
            let may_be = |k: &str| k.bytes().any(|b| b.is_ascii_digit()) || mapping.get(k).is_some();
            if !mapping.0.is_empty()
                && map.keys().any(|k| may_be(k) && replace_occurrences(mapping, k) != *k)
            {
                let old = std::mem::take(map);
                *map = (old.into_iter()).map(|(k, v)| (replace_occurrences(mapping, &k), v)).collect();
            }
            for (name, value) in map.iter_mut() {
                match value {
                    Value::String(s) if policy.selects(parent, name) => *s = at.replace(s),
                    other @ (Value::Number(_) | Value::Array(_)) if policy.selects(parent, name) => {
                        redact_scalars(policy, name, mapping, at, other)
                    }
                    other => redact_json_in(policy, Some(name), mapping, at, other),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| redact_json_in(policy, parent, mapping, at, i)),
        Value::String(s) => *s = replace_occurrences(mapping, s),
        _ => {}
    }
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
                other_upstreams: Vec::new(),
            },
            redaction: None,
        }
    }

    fn text(i: &Interaction) -> String {
        serde_json::to_string(i).unwrap()
    }

    #[test]
    fn an_owner_only_a_form_body_names_is_redacted() {
        let real = "acct-in-a-form-7f3a9c";
        let mut form = interaction("/v2/images", None, "{}");
        form.request.headers = vec![("content-type".into(), "application/x-www-form-urlencoded".into())];
        form.request.body = Body::from_bytes(format!("name=x&owner={real}&project_id={real}2").as_bytes());
        let (redacted, _) = redactor().redact(&form).unwrap();
        let written = text(&redacted);
        assert!(!written.contains(real), "{written}");
        // Prose that happens to hold `owner=` is not read as a form.
        let prose = interaction("/v2/images", None, "see owner=someone else");
        let (redacted, _) = redactor().redact(&prose).unwrap();
        assert!(text(&redacted).contains("owner=someone else"));
    }

    #[test]
    fn owners_that_are_numbers_arrays_short_text_or_upper_case_copies_are_redacted_too() {
        // A number and an array under a policy field keep their JSON types.
        let numbers = interaction(
            "/v2/images",
            None,
            r#"{"owner":1234567890,"__account_code":["acct-1234567",987654321]}"#,
        );
        let (redacted, _) = redactor().redact(&numbers).unwrap();
        let Some(Body::Json(json)) = &redacted.response.body else {
            panic!("{redacted:?}");
        };
        assert!(json["owner"].is_number() && json["owner"] != 1234567890, "{json}");
        assert!(json["__account_code"][1].is_number(), "{json}");
        let out = text(&redacted);
        for real in ["1234567890", "acct-1234567", "987654321"] {
            assert!(!out.contains(real), "{real} survived: {out}");
        }
        // A short owner in a body stored as text (uneven spacing), as a whole string.
        let short = interaction("/v2/images", None, r#"{"owner": "ab12",  "name": "ab12x"}"#);
        assert!(matches!(short.response.body, Some(Body::Text(_))));
        let (redacted, _) = redactor().redact(&short).unwrap();
        let out = text(&redacted);
        assert!(!out.contains(r#"\"ab12\""#), "{out}");
        assert!(out.contains("ab12x"), "only whole strings are replaced: {out}");
        // Python's `json.dumps` style is stored as JSON, redacted field by field, and keeps its
        // style.
        let python = interaction("/v2/images", None, r#"{"owner": "ab12", "name": "ab12x"}"#);
        let (redacted, _) = redactor().redact(&python).unwrap();
        let Some(Body::JsonPython(json)) = &redacted.response.body else {
            panic!("{redacted:?}");
        };
        assert!(json["owner"] != "ab12" && json["name"] == "ab12x", "{json}");
        let bytes = redacted.response.body.as_ref().unwrap().to_bytes().unwrap();
        assert!(bytes.starts_with(br#"{"owner": ""#), "{bytes:?}");
        // An upper-case copy of the owner is the same identifier.
        let upper = interaction(
            "/v2/images",
            None,
            &format!(r#"{{"owner": "{OWNER}", "note": "{}"}}"#, OWNER.to_uppercase()),
        );
        let (redacted, _) = redactor().redact(&upper).unwrap();
        let out = text(&redacted);
        assert!(!out.contains(&OWNER.to_uppercase()), "{out}");
        // An object under `owner` describes it (the image schema), it is not an identifier.
        let schema = interaction(
            "/v2/schemas/image",
            None,
            r#"{"properties": {"owner": {"type": ["null", "string"], "maxLength": 255}}}"#,
        );
        let (redacted, _) = redactor().redact(&schema).unwrap();
        let body = redacted.response.body.as_ref().and_then(Body::json).unwrap();
        assert_eq!(body["properties"]["owner"]["type"][1], "string", "{body}");
    }

    #[test]
    fn a_known_value_in_a_binary_body_is_kept_there_and_handed_to_the_leak_gate() {
        let redactor = redactor();
        redactor.redact(&interaction("/v2/images/x", None, &format!(r#"{{"owner":"{OWNER}"}}"#))).unwrap();
        // An image file that spells its owner's id: not UTF-8, so stored as base64.
        let mut file = vec![0xffu8, 0x00, 0x89];
        file.extend_from_slice(OWNER.as_bytes());
        let mut download = interaction("/v2/images/x/file", None, "");
        download.response.body = Body::from_bytes(&file);
        assert!(matches!(download.response.body, Some(Body::Base64(_))));
        let (redacted, needles) = redactor.redact(&download).unwrap();
        assert_eq!(redacted.response.body, download.response.body, "bytes kept");
        assert!(needles.iter().any(|n| n.value == OWNER), "{needles:?}");
    }

    #[test]
    fn a_file_whose_bytes_are_text_is_kept_byte_for_byte_by_its_content_type() {
        let redactor = redactor();
        redactor.redact(&interaction("/v2/images/x", None, &format!(r#"{{"owner":"{OWNER}"}}"#))).unwrap();
        // A small text fixture uploaded as the image's file, downloaded again: UTF-8, stored as
        // text, but a file by its type: kept, its owner id handed to the leak gate.
        let mut download = interaction("/v2/images/x/file", None, "");
        download.response.headers = vec![("content-type".into(), "application/octet-stream".into())];
        download.response.body = Body::from_bytes(format!("cloud-init: owner={OWNER}\n").as_bytes());
        assert!(matches!(download.response.body, Some(Body::Text(_))));
        let (redacted, needles) = redactor.redact(&download).unwrap();
        assert_eq!(redacted.response.body, download.response.body, "bytes kept");
        assert!(needles.iter().any(|n| n.value == OWNER), "{needles:?}");
        // So is a value that is no id (a domain's name a sign-in named), found in its text.
        let sign_in = r#"{"token":{"user":{"domain":{"name":"acme-prod-account"}}}}"#;
        redactor.redact(&interaction("/v3/auth/tokens", None, sign_in)).unwrap();
        download.response.body = Body::from_bytes(b"#cloud-config\nlogin: acme-prod-account\n");
        let (redacted, needles) = redactor.redact(&download).unwrap();
        assert_eq!(redacted.response.body, download.response.body, "bytes kept");
        assert!(needles.iter().any(|n| n.value == "acme-prod-account"), "{needles:?}");
        // The same text typed as text is redacted as text.
        download.response.headers = vec![("content-type".into(), "text/plain".into())];
        download.response.body = Body::from_bytes(format!("owner={OWNER}").as_bytes());
        let (redacted, _) = redactor.redact(&download).unwrap();
        assert!(!text(&redacted).contains(OWNER));
        for (content_type, file) in [
            ("application/octet-stream", true),
            ("Image/PNG", true),
            ("application/x-iso9660-image", true),
            ("image/svg+xml", false),
            ("application/json", false),
            ("multipart/form-data; boundary=b", false),
        ] {
            let headers = [("Content-Type".to_owned(), content_type.to_owned())];
            assert_eq!(holds_file_bytes(&headers), file, "{content_type}");
        }
    }

    #[test]
    fn a_redacted_id_in_a_place_the_policy_does_not_name_matches_through_id_variants() {
        let redactor = redactor();
        let fake = PseudonymKey::new(b"test-key").pseudonym(OWNER);
        let image = "8f0c3a4e-1b2d-4c5e-9f6a-7b8c9d0e1f2a";
        // An image member's project (the image's own id was never redacted), and a query.
        let mut request = interaction(&format!("/v2/images/{image}/members"), Some("domain_id=x"), "").request;
        request.body = Body::from_bytes(format!(r#"{{"member":"{OWNER}"}}"#).as_bytes());
        request.query = Some(format!("member_status=all&project={OWNER}"));
        let variants = redactor.id_variants(&request);
        let (stored, replaced) = (variants.iter())
            .find(|(v, _)| v.path.contains(image) && !serde_json::to_string(v).unwrap().contains(OWNER))
            .expect("a variant with the member's id alone replaced");
        assert_eq!(replaced, &[OWNER.to_owned()]);
        assert_eq!(stored.query.as_deref(), Some(format!("member_status=all&project={fake}").as_str()));
        let Some(Body::Json(json)) = &stored.body else { panic!() };
        assert_eq!(json["member"], fake.as_str());
        // Once it matched, a later request holding it anywhere is mapped straight away.
        redactor.confirm([(OWNER.to_owned(), "request value".to_owned())]);
        let mut later = interaction("/v3/projects", None, "").request;
        later.query = Some(format!("parent={OWNER}"));
        let (redacted, _) = redactor.redact_request(&later);
        assert_eq!(redacted.query, Some(format!("parent={fake}")));
        // Few candidates, so few lookups: at most 31 variants.
        let many: Vec<String> = (0..9).map(|i| format!("\"{i:032x}\"")).collect();
        let mut crowded = request.clone();
        crowded.body = Body::from_bytes(format!("[{}]", many.join(",")).as_bytes());
        assert!(redactor.id_variants(&crowded).len() <= 31);
    }

    #[test]
    fn an_id_as_an_object_key_or_in_its_uuid_form_is_replaced_too() {
        let dashed = "1bed8568-1165-4c1c-b661-a6ca845ebc77";
        let body = format!(
            r#"{{"owner":"{OWNER}","quotas":{{"{OWNER}":{{"images":10}}}},"other":{{"{}":1,"{dashed}":2}},"tenant":"{dashed}","t2":"{}"}}"#,
            OWNER.to_uppercase(),
            dashed.to_uppercase()
        );
        let (redacted, needles) = redactor().redact(&interaction("/v2/x", None, &body)).unwrap();
        let all = text(&redacted);
        assert!(!all.to_lowercase().contains(OWNER) && !all.to_lowercase().contains(dashed), "{all}");
        let fake = PseudonymKey::new(b"test-key").pseudonym(OWNER);
        let Some(Body::Json(json)) = &redacted.response.body else { panic!() };
        assert_eq!(json["quotas"][&fake]["images"], 10);
        // An object whose only id keys are the other forms: each replaced in its form.
        assert_eq!(json["other"][fake.to_uppercase()], 1);
        assert_eq!(json["other"][other_uuid_form(&fake).unwrap()], 2);
        assert_eq!(json["tenant"], other_uuid_form(&fake).unwrap());
        // The leak gate would find it in that form too.
        let scanner = crate::secrets::leak::LeakScanner::new(needles);
        assert!(scanner.find(dashed.to_uppercase().as_bytes()).is_some());
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

    fn identity(path: &str, request_body: &str, answer: &str) -> Interaction {
        let mut i = interaction(path, None, answer);
        i.request.method = "POST".into();
        i.request.headers = vec![];
        i.request.body = Body::from_bytes(request_body.as_bytes());
        i.response.headers = vec![];
        i
    }

    #[test]
    fn identity_ids_and_names_are_selected_by_parent_and_share_the_owner_pseudonym() {
        let key = PseudonymKey::new(b"test-key");
        let token = identity(
            "/v3/auth/tokens",
            r#"{"auth":{"identity":{"password":{"user":{"name":"alice.smith","domain":{"name":"acme-domain"}}}},"scope":{"project":{"id":"1bed856811654c1cb661a6ca845ebc77"}}}}"#,
            &format!(
                r#"{{"token":{{"project":{{"id":"{OWNER}","name":"cn-north-4","domain":{{"id":"d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0","name":"acme-domain"}}}},"user":{{"id":"u1u1u1u1u1u1u1u1u1u1u1u1u1u1u1u1","name":"alice.smith"}},"catalog":[{{"id":"c4c4c4c4c4c4","endpoints":[{{"url":"https://ecs.example/v2.1/{OWNER}","region_id":"cn-north-4"}}]}}]}}}}"#
            ),
        );
        let (redacted, _) = redactor().redact(&token).unwrap();
        let all = text(&redacted);
        for real in [OWNER, "d0d0d0d0d0d0d0d0", "u1u1u1u1u1u1u1u1", "alice.smith", "acme-domain"] {
            assert!(!all.contains(real), "{real}: {all}");
        }
        let Some(Body::Json(json)) = &redacted.response.body else { panic!() };
        let project = key.pseudonym(OWNER);
        assert_eq!(json["token"]["project"]["id"], project.as_str(), "same as the owner pseudonym");
        assert_eq!(json["token"]["project"]["name"], "cn-north-4", "project names stay");
        assert_eq!(json["token"]["catalog"][0]["id"], "c4c4c4c4c4c4", "a bare id stays");
        assert_eq!(json["token"]["catalog"][0]["endpoints"][0]["url"], format!("https://ecs.example/v2.1/{project}"));
        // The sign-in names match the answer's: a replayed request redacts to the stored one.
        assert_eq!(redactor().redact_request(&token.request).0, redacted.request);

        let list = identity("/v3/projects", "", &format!(r#"{{"projects":[{{"id":"{OWNER}","name":"cn-north-4"}}]}}"#));
        let (listed, _) = redactor().redact(&list).unwrap();
        let Some(Body::Json(json)) = &listed.response.body else { panic!() };
        assert_eq!(json["projects"][0]["id"], project.as_str());
    }

    #[test]
    fn a_value_selected_once_is_replaced_in_every_later_interaction_and_after_learning() {
        let project = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
        let token = identity(
            "/v3/auth/tokens",
            "{}",
            &format!(r#"{{"token":{{"project":{{"id":"{project}"}}}}}}"#),
        );
        // Nothing in this one selects the value: only the path holds it.
        let mut later = interaction(&format!("/v3/{project}/backups"), None, r#"{"backups":[]}"#);
        later.request.headers = vec![];
        later.response.headers = vec![];
        let fresh = redactor();
        assert!(text(&fresh.redact(&later).unwrap().0).contains(project), "not selected alone");
        let recorder = redactor();
        recorder.redact(&token).unwrap();
        let (redacted, needles) = recorder.redact(&later).unwrap();
        let fake = PseudonymKey::new(b"test-key").pseudonym(project);
        assert_eq!(redacted.request.path, format!("/v3/{fake}/backups"));
        assert!(needles.iter().any(|n| n.value == project), "a needle for the leak gate");
        // Learning first (an export) covers interactions that come before the one naming it.
        let exporter = redactor();
        exporter.learn(&token);
        assert_eq!(exporter.redact(&later).unwrap().0.request.path, format!("/v3/{fake}/backups"));
        // Already redacted with this key: left as it is.
        let (again, _) = recorder.redact(&redacted).unwrap();
        assert_eq!(again, redacted);
    }

    /// `record --redact` meets a project id in a request's path before the sign-in answer that
    /// names it: that request is stored (and stamped) with the raw id. `export --redact` finds
    /// the id by its pseudonym, which the sign-in's redacted answer holds, and replaces it.
    #[test]
    fn a_raw_value_recorded_before_the_answer_naming_it_is_replaced_by_its_pseudonym_on_export() {
        let project = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
        let token = identity(
            "/v3/auth/tokens",
            "{}",
            &format!(r#"{{"token":{{"project":{{"id":"{project}"}}}}}}"#),
        );
        let mut earlier = interaction(&format!("/v3/{project}/backups"), None, r#"{"backups":[]}"#);
        earlier.request.headers = vec![];
        earlier.response.headers = vec![];
        let recorder = redactor();
        let (earlier, _) = recorder.redact(&earlier).unwrap();
        let (token, _) = recorder.redact(&token).unwrap();
        assert!(text(&earlier).contains(project), "recorded before it was known");
        assert!(!text(&token).contains(project));
        let exporter = redactor();
        for stored in [&earlier, &token] {
            exporter.learn(stored);
        }
        let (exported, needles) = exporter.redact(&earlier).unwrap();
        let fake = PseudonymKey::new(b"test-key").pseudonym(project);
        assert_eq!(exported.request.path, format!("/v3/{fake}/backups"));
        assert!(!text(&exported).contains(project));
        assert!(needles.iter().any(|n| n.value == project), "a needle for the leak gate");
        // The sign-in itself, and an id whose pseudonym no redacted field holds, are left.
        assert_eq!(exporter.redact(&token).unwrap().0.response, token.response);
        // Glued to other text by dashes (`vol-…-data`) or as a UUID inside a longer run.
        let mut glued = interaction(&format!("/v3/vol-{project}-da/x"), None, "{}");
        glued.request.headers = vec![];
        glued.response.headers = vec![];
        let (glued, _) = redactor().redact(&glued).unwrap();
        assert!(text(&glued).contains(project), "recorded before it was known");
        let fresh = redactor();
        for stored in [&glued, &token] {
            fresh.learn(stored);
        }
        assert_eq!(fresh.redact(&glued).unwrap().0.request.path, format!("/v3/vol-{fake}-da/x"));
        let other = "ffeeddccbbaa99887766554433221100";
        let (unrelated, _) = recorder.redact(&interaction(&format!("/v3/{other}/x"), None, "{}")).unwrap();
        assert_eq!(exporter.redact(&unrelated).unwrap().0.request.path, format!("/v3/{other}/x"));
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
    fn a_raw_value_put_into_a_stamped_recording_is_not_vouched_for_and_is_redacted_again() {
        let original = interaction(
            "/v2/images",
            Some(&format!("owner={OWNER}")),
            &format!(r#"{{"owner":"{OWNER}","images":[{{"owner":"ab12"}}]}}"#),
        );
        let (once, _) = redactor().redact(&original).unwrap();
        let stamp = once.redaction.clone().unwrap();
        assert!(!stamp.pseudonym_checks.as_ref().unwrap().is_empty());
        assert_eq!(vouch::unvouched(&stamp, &once), Some(Values::new()));
        // Pasted after redaction: a long owner in the body, a short one, and the project header.
        let mut pasted = once.clone();
        let body = format!(r#"{{"owner":"{OWNER}","images":[{{"owner":"zz99"}}]}}"#);
        pasted.response.body = Body::from_bytes(body.as_bytes());
        pasted.request.headers = vec![("x-project-id".into(), OWNER.into())];
        let found = vouch::unvouched(&stamp, &pasted).unwrap();
        let labels: Vec<&str> = found.values().map(String::as_str).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(labels.iter().all(|l| l.contains("owner") || l.contains("x-project-id")));
        // Redacting again (same key) replaces them, with the pseudonyms the first pass used.
        let (again, _) = redactor().redact(&pasted).unwrap();
        let out = text(&again);
        assert!(!out.contains(OWNER) && !out.contains("zz99"), "{out}");
        assert_eq!(again.request.headers, once.request.headers);
        let again_stamp = again.redaction.clone().unwrap();
        assert_eq!(vouch::unvouched(&again_stamp, &again), Some(Values::new()));
        // A stamp from before checks existed vouches for nothing and cannot tell; redacting
        // again does not vouch for what it holds, unless the user says so.
        let mut old = pasted.clone();
        old.redaction.as_mut().unwrap().pseudonym_checks = None;
        assert_eq!(vouch::unvouched(old.redaction.as_ref().unwrap(), &old), None);
        let (again, _) = redactor().redact(&old).unwrap();
        assert_eq!(again.redaction.unwrap().pseudonym_checks, None);
        let (vouched, _) = redactor().vouching_existing(true).redact(&old).unwrap();
        assert!(vouched.redaction.unwrap().pseudonym_checks.is_some());
    }

    #[test]
    fn unvouched_numbers_short_query_values_and_base64_json_are_replaced_by_position() {
        let original = interaction(
            "/v2/images",
            Some("owner=ab12&limit=5"),
            r#"{"owner":"cd34ef","images":[{"owner":123456}]}"#,
        );
        let (once, _) = redactor().redact(&original).unwrap();
        let stamp = once.redaction.clone().unwrap();
        // Raw values put back where the stamp's names select them.
        let mut pasted = once.clone();
        pasted.request.query = Some("owner=zz99&limit=5".into());
        let body = r#"{"owner":"cd34ef","images":[{"owner":987654}]}"#;
        pasted.response.body = Body::from_bytes(body.as_bytes());
        assert_eq!(vouch::unvouched(&stamp, &pasted).unwrap().len(), 3);
        let (again, _) = redactor().redact(&pasted).unwrap();
        let out = text(&again);
        for raw in ["zz99", "cd34ef", "987654"] {
            assert!(!out.contains(raw), "{raw} survived: {out}");
        }
        assert!(again.request.query.as_deref().unwrap().ends_with("&limit=5"));
        let json = again.response.body.as_ref().and_then(Body::json).unwrap();
        assert!(json["images"][0]["owner"].is_number(), "the type is kept: {json}");
        let again_stamp = again.redaction.clone().unwrap();
        assert_eq!(vouch::unvouched(&again_stamp, &again), Some(Values::new()));
        // A body stored as base64 that is JSON is read as JSON.
        let mut hidden = once.clone();
        hidden.response.body = Some(Body::Base64(
            base64::engine::general_purpose::STANDARD.encode(r#"{"owner":"raw-owner-77"}"#),
        ));
        let found = vouch::unvouched(&stamp, &hidden).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let (again, _) = redactor().redact(&hidden).unwrap();
        let bytes = again.response.body.as_ref().unwrap().to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("raw-owner-77"));
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
        assert_eq!(redactor().redact_request(&original.request).0, stored.request);
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
    fn credential_needles_cover_authorization_parameters_however_written() {
        for (value, secrets) in [
            ("sdk-hmac-sha256 access=AKLOWER123, signedheaders=host, signature=siglower456", &["AKLOWER123", "siglower456"][..]),
            ("SDK-HMAC-SHA256 Access = AKSPACED12 , Signature = sigspaced34", &["AKSPACED12", "sigspaced34"]),
            ("SDK-HMAC-SHA256 Access=\"AKQUOTED12\", Signature=\"sigquoted34\"", &["AKQUOTED12", "sigquoted34"]),
            ("OBS AKOBS12345:c2lnbmF0dXJlLW9icw==", &["AKOBS12345", "c2lnbmF0dXJlLW9icw=="]),
            ("Digest username=\"u\", realm=\"r\", nonce=\"n\", response=\"6629fae49393a05397450978507c4ef1\", cnonce=\"0a4f113b\"", &["6629fae49393a05397450978507c4ef1", "0a4f113b"]),
        ] {
            let mut headers = hyper::HeaderMap::new();
            headers.insert("authorization", value.parse().unwrap());
            let values: Vec<String> = credential_needles(&headers).into_iter().map(|n| n.value).collect();
            for secret in secrets {
                assert!(values.iter().any(|v| v == secret), "{value}: {secret} not in {values:?}");
            }
            assert!(!values.iter().any(|v| v == "host" || v == "u" || v == "r"), "{value}: {values:?}");
        }
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
