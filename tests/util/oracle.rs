//! The property oracle: the checks `tests/properties.rs` runs on proptest's generated inputs and
//! the `fuzz/` targets run on libFuzzer's (they include this file with
//! `#[path = "../../tests/util/oracle.rs"]`). Each check is a plain function that panics when its
//! property does not hold. Only `ims_vcr` (with `internals`) and `serde_json` may be used here:
//! they are all the fuzz crate has.

#![allow(dead_code)] // Each fuzz target uses only some of the checks.

use std::path::Path;

use ims_vcr::formats::cassette::{parse, render};
use ims_vcr::model::interaction::{Body, Interaction};
use ims_vcr::model::key::{MatchRules, RequestKey};
use ims_vcr::model::recording::Recording;
use ims_vcr::secrets::leak::MIN_NEEDLE_LEN;
use ims_vcr::secrets::redact::{Redactor, find_leak};
use serde_json::Value;

// ---- cassettes ------------------------------------------------------------------------------

/// A rendered cassette parses back to the same recording and match rules, and renders to the
/// same bytes again.
pub fn cassette_round_trips(recording: &Recording, rules: &MatchRules) {
    let rendered = render(recording, rules);
    let (again, again_rules) = parse(Path::new("rendered.json"), &rendered).unwrap_or_else(|e| {
        panic!(
            "a rendered cassette does not parse: {e}\n{}",
            String::from_utf8_lossy(&rendered)
        )
    });
    assert_eq!(&again, recording, "render → parse changed the recording");
    assert_eq!(
        &again_rules, rules,
        "render → parse changed the match rules"
    );
    assert_eq!(
        render(&again, &again_rules),
        rendered,
        "rendering is not deterministic"
    );
}

// ---- request keys ---------------------------------------------------------------------------

/// The canonical form is a fixed point: the key built again (under the same `rules`, from the
/// same `body`) from `key`'s request line is the same key. Holds for what hyper can deliver: a
/// method that is a token and a path with neither `?` nor line breaks.
pub fn canonical_form_is_a_fixed_point(rules: &MatchRules, key: &RequestKey, body: &[u8]) {
    let line = key.request_line();
    let (method, target) = line.split_once(' ').expect("method and target");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let again = RequestKey::new(rules, method, path, query, |_| vec![], body);
    assert_eq!(
        again.canonical(),
        key.canonical(),
        "the canonical form is not a fixed point"
    );
    assert_eq!(&again, key);
}

/// Two spellings of one request (query pairs in another order, the method in another case) give
/// one key: the same canonical form and the same digest.
pub fn same_key(a: &RequestKey, b: &RequestKey, context: &str) {
    assert_eq!(a.canonical(), b.canonical(), "{context}");
    assert_eq!(a.hex(), b.hex(), "{context}");
    assert_eq!(a, b, "{context}");
}

// ---- redaction ------------------------------------------------------------------------------

/// Redacting `original` never panics and redacting it again changes nothing; no real value that
/// can be disguised (see [`hideable`]) stays raw where redaction rewrites (see [`places`]); and
/// whatever real value stays raw anywhere, the leak gate refuses.
pub fn redaction_is_idempotent_and_leaves_no_real_value_raw(
    redactor: &Redactor,
    original: &Interaction,
) {
    let (once, needles) = redactor
        .redact(original)
        .expect("an unstamped interaction always redacts");
    let (twice, _) = redactor
        .redact(&once)
        .expect("our own stamp always redacts again");
    assert_eq!(twice, once, "redaction is not idempotent");

    // Some values have nothing a pseudonym can replace (see `hideable`), and some places are
    // never rewritten (see `places`): what stays there is the leak gate's to refuse.
    let (strict, gate_only) = places(&once);
    let mut left_raw = false;
    for needle in needles.iter().filter(|n| n.value.len() >= MIN_NEEDLE_LEN) {
        let real = needle.value.as_str();
        for (place, text) in &strict {
            assert!(
                !hideable(real) || !text.contains(real),
                "{} ({real:?}) is still raw in the {place}: {text:?}",
                needle.label
            );
        }
        left_raw |= strict.iter().any(|(_, t)| t.contains(real))
            || gate_only.iter().any(|b| contains(b, real.as_bytes()));
    }
    if left_raw {
        assert!(
            find_leak(&once, needles).is_some(),
            "a real value is left raw and the leak gate misses it"
        );
    }
}

/// Where a real value could stay in what is written. `strict`: path, query values, header values,
/// text bodies and the strings of JSON bodies, which redaction rewrites. `gate_only`: the whole
/// query, binary bodies and whole JSON bodies, whose object keys and numbers redaction never
/// rewrites: what stays there is the leak gate's to refuse.
pub fn places(i: &Interaction) -> (Vec<(String, String)>, Vec<Vec<u8>>) {
    fn strings(json: &Value, out: &mut Vec<(String, String)>) {
        match json {
            Value::String(s) => out.push(("JSON string".to_owned(), s.clone())),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut strict = vec![("path".to_owned(), i.request.path.clone())];
    // A query is a list of pairs: a value can only be meant within one (`&` is not in a pair),
    // and the names of redacted parameters are kept as they are.
    if let Some(query) = &i.request.query {
        let values = query
            .split('&')
            .map(|p| p.split_once('=').map_or("", |(_, v)| v));
        strict.extend(values.map(|v| ("query value".to_owned(), v.to_owned())));
    }
    for (name, value) in i.request.headers.iter().chain(&i.response.headers) {
        strict.push((format!("header {name:?}"), value.clone()));
    }
    let mut gate_only: Vec<Vec<u8>> = i
        .request
        .query
        .iter()
        .map(|q| q.clone().into_bytes())
        .collect();
    for body in [&i.request.body, &i.response.body].into_iter().flatten() {
        let bytes = body.to_bytes().expect("a body we built decodes").to_vec();
        match body {
            Body::Json(json) | Body::JsonPython(json) => strings(json, &mut strict),
            _ => {
                if let Ok(text) = String::from_utf8(bytes.clone()) {
                    strict.push(("body".to_owned(), text));
                }
            }
        }
        gate_only.push(bytes);
    }
    (strict, gate_only)
}

/// True when `value` must not survive redaction: it has at least 8 ASCII letters or digits
/// outside percent-escapes. Fewer, and a pseudonym of another value (random per letter or digit,
/// punctuation kept) can recreate it by chance; none at all, and it is its own pseudonym
/// (documented in `pseudonym.rs`). Real identifiers (32-hex project IDs, account codes) qualify.
pub fn hideable(value: &str) -> bool {
    let mut rest = value;
    // A fragment may start inside an escape (`5D%00`) and end inside one (`%0`).
    let lead = rest
        .bytes()
        .take(2)
        .take_while(u8::is_ascii_hexdigit)
        .count();
    if rest[lead..].starts_with('%') {
        rest = &rest[lead..];
    }
    let bytes = rest.as_bytes();
    let (mut i, mut alphanumerics) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'%' {
            i += 1;
            let mut digits = 0;
            while digits < 2 && i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                i += 1;
                digits += 1;
            }
            continue;
        }
        alphanumerics += usize::from(bytes[i].is_ascii_alphanumeric());
        i += 1;
    }
    alphanumerics >= 8
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
