//! Replay's last try for a request carrying real values where redacted recordings hold
//! pseudonyms the request does not name: each value of the request is compared, place by place,
//! with what a near recording holds there, and taken for a redacted one when its pseudonym is
//! exactly that.
//!
//! Export replaces a redacted value wherever a recording holds it, so a request can carry one in
//! a place no policy name selects: a Keystone token sign-in scoped to a project named as a user
//! is (the user's name, redacted where a sign-in named it), `GET /v3/domains/{id}` with a
//! domain id that is a name (`eastzone`). Neither is id-like, so [`Redactor::id_variants`] does not try them,
//! and a run whose requests never named them first has not learned them. A pseudonym is keyed
//! (HMAC-SHA-256 of the value), so a value whose pseudonym is exactly what the recording holds
//! in the same place is that recording's real value, not a coincidence, when it is distinctive
//! enough ([`distinctive`]: a digit's pseudonym is a digit, so short values are never taken).

use super::*;

impl Redactor {
    /// `request` (already [`Redactor::redact_request`]ed) with every value whose pseudonym
    /// `recorded` holds in the same place replaced by it: a path segment (paths of as many
    /// segments), a query parameter's value (the same name, in the same order), a string of a
    /// JSON body (the same key or index). With the real values replaced; `None` when none was.
    pub fn aligned(
        &self,
        request: &RecordedRequest,
        recorded: &RecordedRequest,
    ) -> Option<(RecordedRequest, Vec<String>)> {
        if request.method != recorded.method {
            return None;
        }
        let mut replaced = Vec::new();
        let mut out = request.clone();
        let mut take = |live: &str, stored: &str| -> Option<String> {
            let fits = live != stored && distinctive(live) && self.key.pseudonym(live) == stored;
            fits.then(|| {
                replaced.push(live.to_owned());
                stored.to_owned()
            })
        };
        let (live, stored): (Vec<&str>, Vec<&str>) = (request.path.split('/').collect(), recorded.path.split('/').collect());
        if live.len() == stored.len() {
            let segments: Vec<String> = (live.iter().zip(&stored))
                .map(|(live, stored)| {
                    let decoded = percent_decode_str(live).decode_utf8_lossy();
                    match take(&decoded, stored) {
                        Some(_) => (*stored).to_owned(),
                        None => (*live).to_owned(),
                    }
                })
                .collect();
            out.path = segments.join("/");
        }
        if let (Some(live), Some(stored)) = (&request.query, &recorded.query) {
            let stored: Vec<(String, String)> = form_urlencoded::parse(stored.as_bytes()).into_owned().collect();
            let mut changed = false;
            let pairs: Vec<(String, String)> = form_urlencoded::parse(live.as_bytes())
                .into_owned()
                .enumerate()
                .map(|(i, (name, value))| match stored.get(i) {
                    Some((n, v)) if *n == name => match take(&value, v) {
                        Some(pseudonym) => {
                            changed = true;
                            (name, pseudonym)
                        }
                        None => (name, value),
                    },
                    _ => (name, value),
                })
                .collect();
            if changed {
                out.query = Some(form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish());
            }
        }
        if let (Some(body), Some(live), Some(stored)) = (
            &request.body,
            request.body.as_ref().and_then(Body::json),
            recorded.body.as_ref().and_then(Body::json),
        ) {
            let mut json = live.clone();
            if align_json(&mut json, stored, &mut take)
                && let Some(aligned) = body.json_in_same_style(&json)
            {
                out.body = Some(aligned);
            }
        }
        (!replaced.is_empty()).then_some((out, replaced))
    }
}

/// Whether `value` has enough letters and digits that another value with its pseudonym is
/// no coincidence: a pseudonym keeps its value's length and kinds of characters (a digit for a
/// digit), so `2` and `6` may share one, and `?limit=2` must not match a recording of
/// `?limit=5`. About 23 bits: five letters (`admin`), seven digits, or a mix.
fn distinctive(value: &str) -> bool {
    let bits: f64 = value
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphabetic() => 4.7,
            c if c.is_ascii_digit() => 3.3,
            _ => 0.0,
        })
        .sum();
    bits >= 23.0
}

/// Replaces, in `live`, each string whose pseudonym (`take`) `stored` holds at the same place;
/// whether any was.
fn align_json(live: &mut Value, stored: &Value, take: &mut impl FnMut(&str, &str) -> Option<String>) -> bool {
    match (live, stored) {
        (Value::String(live), Value::String(stored)) => match take(live, stored) {
            Some(pseudonym) => {
                *live = pseudonym;
                true
            }
            None => false,
        },
        (Value::Object(live), Value::Object(stored)) => {
            let mut any = false;
            for (name, value) in live.iter_mut() {
                if let Some(at) = stored.get(name) {
                    any |= align_json(value, at, take);
                }
            }
            any
        }
        (Value::Array(live), Value::Array(stored)) => {
            let mut any = false;
            for (value, at) in live.iter_mut().zip(stored) {
                any |= align_json(value, at, take);
            }
            any
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::redaction::RedactionPolicy;

    fn request(path: &str, query: Option<&str>, body: Option<Value>) -> RecordedRequest {
        RecordedRequest {
            method: "POST".into(),
            path: path.into(),
            query: query.map(str::to_owned),
            headers: vec![],
            body: body.map(Body::Json),
            session: None,
        }
    }

    #[test]
    fn values_whose_pseudonyms_a_near_recording_holds_in_the_same_place_are_replaced() {
        let redactor = Redactor::new(RedactionPolicy::default(), PseudonymKey::new(b"k"));
        let p = |v: &str| redactor.key.pseudonym(v);
        let body = |project: &str, method: &str| {
            serde_json::json!({"auth": {"identity": {"methods": [method]}, "scope": {"project": {"name": project}}}})
        };
        let recorded = request(
            &format!("/v3/domains/{}/config", p("default")),
            Some(&format!("name={}&x=1", p("admin"))),
            Some(body(&p("admin"), "token")),
        );
        let live = request("/v3/domains/default/config", Some("name=admin&x=1"), Some(body("admin", "token")));
        let (aligned, replaced) = redactor.aligned(&live, &recorded).unwrap();
        assert_eq!(aligned, recorded);
        assert_eq!(replaced, ["default", "admin", "admin"]);
        // Nothing of the kind: another value, or values in other places, or another method.
        let other = request("/v3/domains/other/config", Some("x=admin&name=1"), Some(body("demo", "admin")));
        assert_eq!(redactor.aligned(&other, &recorded), None);
        let get = RecordedRequest { method: "GET".into(), ..live };
        assert_eq!(redactor.aligned(&get, &recorded), None);
        // A value too short to tell: whatever its pseudonym, never taken.
        for short in ["2", "3", "6", "abcd", "123456"] {
            let stored = request(&format!("/v2/flavors/{}", p(short)), None, None);
            let live = request(&format!("/v2/flavors/{short}"), None, None);
            assert_eq!(redactor.aligned(&live, &stored), None, "{short}");
        }
    }
}
