//! What a redaction policy names in an interaction: the real values under its header, query
//! and field names (request headers, query and body; answer headers and body), each with what it
//! was found as (`field owner`, `header x-project-id`). The redactor replaces them; `vouch.rs`
//! checks them.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use crate::model::interaction::{Body, Interaction, RecordedRequest};
use crate::model::redaction::RedactionPolicy;

pub(crate) type Values = BTreeMap<String, String>; // value → label (what it was found as)

/// The names every OpenStack cloud gives its bootstrap identities (Keystone's `default` domain,
/// `Default` by name, the `admin` user, project and role, the `service` project, devstack's
/// `demo` and `alt_demo`): they name nobody, and they are also words of the API (the `admin`
/// interface and role, the `default_project_id` field), so they are never redacted. Redacted,
/// `admin` became a pseudonym in every role list and endpoint interface, and `default` inside
/// the name of `default_project_id`.
pub(crate) const GENERIC_NAMES: [&str; 6] = ["default", "Default", "admin", "service", "demo", "alt_demo"];

/// Whether `value` is one of [`GENERIC_NAMES`].
pub(crate) fn is_generic_name(value: &str) -> bool {
    GENERIC_NAMES.contains(&value)
}

fn note(values: &mut Values, value: &str, label: impl FnOnce() -> String) {
    if !value.is_empty() && !is_generic_name(value) && !values.contains_key(value) {
        values.insert(value.to_owned(), label());
    }
}

/// Every value `policy` names in `interaction` (request headers, query and body; answer headers
/// and body), with what each was found as.
pub(crate) fn policy_values(policy: &RedactionPolicy, interaction: &Interaction) -> Values {
    let mut values = BTreeMap::new();
    collect_request(policy, &interaction.request, &mut values);
    collect_headers(policy, &interaction.response.headers, &mut values);
    collect_body(policy, &interaction.response.body, &mut values);
    values
}

pub(crate) fn collect_request(policy: &RedactionPolicy, request: &RecordedRequest, values: &mut Values) {
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
    let json = match body {
        Some(Body::Json(json) | Body::JsonPython(json)) => return collect_json(policy, json, values),
        Some(Body::Text(text)) => match json_of(text.as_bytes()) {
            None if collect_form(policy, text, values) => return,
            json => json,
        },
        // JSON written as base64 by hand (or by another tool) is JSON all the same.
        Some(Body::Base64(b64)) => {
            let engine = base64::engine::general_purpose::STANDARD;
            engine.decode(b64.as_bytes()).ok().and_then(|b| json_of(&b))
        }
        None => return,
    };
    // Else JSON behind gzip or zlib, in UTF-16 or in Latin-1, read as the leak gate reads it.
    let json = json.or_else(|| crate::secrets::exposure::innermost(body).and_then(|b| json_of(&b)));
    if let Some(json) = json {
        collect_json(policy, &json, values);
    }
}

/// `bytes` as JSON, a UTF-8 byte-order mark before it allowed.
fn json_of(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)).ok()
}

/// A form body (`owner=…&name=…`, as `application/x-www-form-urlencoded` sends it, `=` in it; a
/// line ending after it, or a form a line): the values of the fields the policy names as query parameters or JSON fields.
/// False when `text` is not one.
fn collect_form(policy: &RedactionPolicy, text: &str, values: &mut Values) -> bool {
    // A line ending after it, or a form a line (an env file), as the credentials are read.
    let lines = !text.contains(['\n', '\r'])
        || crate::model::credentials::looks_like_form_lines(text.as_bytes());
    if !text.contains('=') || text.contains(' ') || !lines {
        return false;
    }
    for line in text.lines() {
        for (name, value) in form_urlencoded::parse(line.as_bytes()) {
            if policy.query.iter().any(|q| *q == name) || policy.selects(None, &name) {
                note(values, &value, || format!("form field {name}"));
            }
        }
    }
    true
}

fn collect_json(policy: &RedactionPolicy, json: &Value, values: &mut Values) {
    collect_json_in(policy, None, json, values);
}

/// `parent`: the name of the field whose value `json` is (an array passes its own on).
fn collect_json_in(policy: &RedactionPolicy, parent: Option<&str>, json: &Value, values: &mut Values) {
    match json {
        Value::Object(map) => {
            for (name, value) in map {
                match value {
                    Value::String(s) if policy.selects(parent, name) => {
                        note(values, s, || format!("field {name}"));
                    }
                    // A selected field whose value is a number or an array: every scalar in it is
                    // the identifier (`"owner": 12345`, `"owner": ["a", "b"]`). An object is not
                    // (the image schema describes `owner` with one).
                    other @ (Value::Number(_) | Value::Array(_)) if policy.selects(parent, name) => {
                        collect_scalars(policy, other, name, values)
                    }
                    other => collect_json_in(policy, Some(name), other, values),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect_json_in(policy, parent, i, values)),
        _ => {}
    }
}

/// Every string and number inside `json`, as values of field `name`; an object in it is read as
/// any object is, under `name` (`{"owner": ["…", {"owner": "…"}]}`).
fn collect_scalars(policy: &RedactionPolicy, json: &Value, name: &str, values: &mut Values) {
    match json {
        Value::String(s) => note(values, s, || format!("field {name}")),
        Value::Number(n) => note(values, &n.to_string(), || format!("field {name}")),
        Value::Array(items) => (items.iter()).for_each(|i| collect_scalars(policy, i, name, values)),
        Value::Object(_) => collect_json_in(policy, Some(name), json, values),
        Value::Bool(_) | Value::Null => {}
    }
}
