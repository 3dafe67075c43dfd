//! Credentials an *answer* hands out: the secret key and security token of IAM's access keys,
//! tokens, passwords, and credentials inside URLs (`?Signature=…` of a presigned download URL,
//! `user:password@` of a connection string). They are masked before an answer is stored, like
//! the request's credentials ([`crate::model::credentials`]), but by narrower rules: answers are
//! data a client reads, so a field is a secret by its whole name or by how it ends, never by a
//! part (`password_expires_at`, Glance's `img_signature` and `secret_id` stay).

use serde_json::Value;

use crate::model::credentials::{
    Found, PLACEHOLDER, compact, is_token_name, mask_credential, mask_path, mask_query,
};

/// Whole field names, in [`compact`] form, whose values are credentials when an answer hands
/// them out.
const ANSWER_SECRETS: &[&str] = &[
    "secret",
    "securitytoken",
    "xsecuritytoken",
    "password",
    "pwd",
    "pass",
    "adminpass",
    "clientsecret",
    "apikey",
    "xapikey",
    "authkey",
    "xauthkey",
    "privatekey",
    "passphrase",
    "passcode",
    "authorization",
    // Huawei's secret key (`sk`) and access key id (`ak`) when an answer names them so.
    "sk",
    "ak",
];

/// Endings (in [`compact`] form) that make a field name a secret: `db_password`,
/// `adminPassword`, `root_passwd`, `shared_secret`, `db_pass`, `ssh_private_key`, `secretKey`,
/// `secret_access_key`. Names ending in `token` are secrets too, unless a page's
/// (`next_token`); see [`is_token_name`].
const ANSWER_SECRET_ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "pass",
    "privatekey",
    "secretkey",
    "secretaccesskey",
    "apikey",
];

/// Objects (in [`compact`] form) whose `access` field is an access key id (`credential.access`,
/// `credentials[].access`): replaced by a pseudonym, so the answer keeps its shape.
const KEY_HOLDERS: &[&str] = &["credential", "credentials"];

/// Whether an answer field named `name` (any case or spelling) holds a credential.
fn is_answer_secret(name: &str) -> bool {
    let compact = compact(name);
    ANSWER_SECRETS.contains(&compact.as_str())
        || ANSWER_SECRET_ENDINGS.iter().any(|end| compact.ends_with(end))
        || is_token_name(&compact)
}

/// Masks, in place, the credentials an answer body hands out: each secret field (see
/// [`is_answer_secret`]) at any depth holds [`PLACEHOLDER`], so do the credentials of every URL
/// in a string ([`mask_urls`]), and the `access` key id of a `credential` object (or of each of
/// `credentials`) is replaced by `pseudonym(access)`. A `token` object is kept (a Keystone v3
/// token body is data a client reads), but the `id` in it is masked (Keystone v2's token).
/// Returns what was replaced (key ids included), for the leak gate.
pub fn mask_answer_json(value: &mut Value, pseudonym: &dyn Fn(&str) -> String) -> Vec<Found> {
    let mut found = Vec::new();
    mask_answer_into(value, false, pseudonym, &mut found);
    found
}

/// Whether `value` has, at any depth, something [`mask_answer_json`] could act on (a secret
/// field, an `access` key id, a string with a URL holding a query or user information). When
/// not, masking would change nothing, so the answer need not be copied to be masked (most
/// answers: a copy of a parsed body is dear).
pub fn may_hold_answer_secrets(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(name, item)| {
            may_be_secret_name(name)
                && (is_answer_secret(name) || compact(name) == "access")
                || may_hold_answer_secrets(item)
        }),
        Value::Array(items) => items.iter().any(may_hold_answer_secrets),
        Value::String(text) => may_hold_url_credentials(text),
        _ => false,
    }
}

/// A cheap first look at a field name: every name [`is_answer_secret`] accepts (and `access`)
/// holds one of these in some letter case. This runs over every key of every recorded answer.
fn may_be_secret_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    ["pass", "pwd", "secret", "key", "token", "auth", "sk", "ak", "access"]
        .iter()
        .any(|word| {
            bytes
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        })
}

/// Whether JSON text `text` could hold something [`may_hold_answer_secrets`] finds: a key
/// holding `secret`, `token`, `pass`, `pwd`, `access`, `key` or `auth` in any letter case, a
/// key `sk` or `ak`, a URL with a query or user information, or any backslash (a key may be
/// written with escapes). False for most answers, which are then not parsed to be masked.
pub fn may_name_answer_secrets(text: &str) -> bool {
    if text.contains('\\') || may_hold_url_credentials(text) {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    [
        "secret", "token", "pass", "pwd", "access", "key", "auth", "\"sk\"", "\"ak\"",
    ]
    .iter()
    .any(|word| memchr::memmem::find(lower.as_bytes(), word.as_bytes()).is_some())
}

/// Whether `text` has a URL that could carry a credential (`://` and a `?`, `@` or `;`).
fn may_hold_url_credentials(text: &str) -> bool {
    text.contains("://")
        && (text.contains(['?', '@']) || crate::model::credentials::has_param_delimiter(text))
}

fn mask_answer_into(
    value: &mut Value,
    holder: bool,
    pseudonym: &dyn Fn(&str) -> String,
    found: &mut Vec<Found>,
) {
    match value {
        Value::Object(map) => {
            for (name, item) in map.iter_mut() {
                let normal = compact(name);
                if is_answer_secret(name) {
                    let mut masked = Vec::new();
                    // Whatever its type: an array, `{"id": …}`, a secret's object (a token's
                    // object keeps its description: see `mask_credential`).
                    mask_credential(name, item, &mut masked);
                    found.extend(masked.into_iter().map(|f| Found {
                        label: format!("credential field {name} of the answer body"),
                        value: f.value,
                    }));
                } else if holder
                    && normal == "access"
                    && let Value::String(access) = item
                    && !access.is_empty()
                    && *access != pseudonym(access)
                {
                    found.push(Found {
                        label: format!("access key id ({name}) of the answer body"),
                        value: access.clone(),
                    });
                    *access = pseudonym(access);
                }
                let holds = KEY_HOLDERS.contains(&normal.as_str());
                mask_answer_into(item, holds, pseudonym, found);
            }
        }
        // `credentials: [{access, ...}]`: the array passes the holder on to its objects.
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| mask_answer_into(i, holder, pseudonym, found)),
        Value::String(text) => {
            if let Some((masked, values)) = mask_urls(text) {
                *text = masked;
                found.extend(values);
            }
        }
        _ => {}
    }
}

/// `text` with the credentials of every URL in it masked: the password of its user
/// information (`mysql://root:REDACTED@db`) and its credential query parameters
/// (`?AccessKeyId=REDACTED&Signature=REDACTED`, by the request side's names). `None` when
/// nothing changed. A URL runs from its scheme's `://` to a space, quote or angle bracket, so
/// this reads JSON strings, `Location` and `Link` headers alike.
pub fn mask_urls(text: &str) -> Option<(String, Vec<Found>)> {
    if !may_hold_url_credentials(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, tail) = rest.split_at(at + 3);
        out.push_str(before);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        mask_url(&tail[..end], &mut out, &mut found);
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out != text).then_some((out, found))
}

/// A header value with its credentials masked, and what they were; `None` when it holds none:
/// those of absolute URLs ([`mask_urls`]), the query of a relative one (`Location:
/// /next?token=…`, `Refresh: 0; url=/x?token=…`, `X-Original-URL`), and `;name=value`
/// parameters (`Location: /x;token=…`, `Forwarded: for=…;token=…`).
pub fn mask_header_value(value: &str) -> Option<(String, Vec<Found>)> {
    let mut found = Vec::new();
    let mut text = match mask_urls(value) {
        Some((masked, values)) => {
            found.extend(values);
            masked
        }
        None => value.to_owned(),
    };
    if text.contains('?') {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find('?') {
            out.push_str(&rest[..=at]);
            let tail = &rest[at + 1..];
            let end = tail
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ',' | '#'))
                .unwrap_or(tail.len());
            match mask_query(&tail[..end]) {
                Some((masked, values)) => {
                    out.push_str(&masked);
                    found.extend(values);
                }
                None => out.push_str(&tail[..end]),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        text = out;
    }
    if let Some((masked, values)) = crate::model::credentials::mask_semicolon_params(&text) {
        text = masked;
        found.extend(values);
    }
    (text != value).then_some((text, found))
}

/// Appends `url` (what follows `://`) to `out` with its credentials masked.
fn mask_url(url: &str, out: &mut String, found: &mut Vec<Found>) {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, tail) = url.split_at(authority_end);
    match authority.rsplit_once('@').and_then(|(userinfo, host)| {
        let (user, password) = userinfo.split_once(':')?;
        (!password.is_empty() && password != PLACEHOLDER).then_some((user, password, host))
    }) {
        Some((user, password, host)) => {
            found.push(Found {
                label: "password in a URL of the answer".into(),
                value: percent_encoding::percent_decode_str(password)
                    .decode_utf8_lossy()
                    .into_owned(),
            });
            out.push_str(&format!("{user}:{PLACEHOLDER}@{host}"));
        }
        None => out.push_str(authority),
    }
    let fragment_at = tail.find('#').unwrap_or(tail.len());
    let (tail, fragment) = tail.split_at(fragment_at);
    // The path's matrix parameters (`https://h/x;token=…`).
    let shown = |path: &str, out: &mut String, found: &mut Vec<Found>| match mask_path(path) {
        Some((masked, values)) => {
            out.push_str(&masked);
            found.extend(values);
        }
        None => out.push_str(path),
    };
    match tail.split_once('?') {
        Some((path, query)) => {
            shown(path, out, found);
            out.push('?');
            match mask_query(query) {
                Some((masked, values)) => {
                    out.push_str(&masked);
                    found.extend(values.into_iter().map(|f| Found {
                        label: f.label.replace("query parameter", "query parameter of a URL in the answer"),
                        value: f.value,
                    }));
                }
                None => out.push_str(query),
            }
        }
        None => shown(tail, out, found),
    }
    out.push_str(fragment);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_with_a_key_masking_acts_on_are_copied_to_be_masked() {
        use serde_json::json;
        let plain = json!({"id": "x", "tags": [{"name": "a"}], "owner": "o", "accessed": 1});
        assert!(!may_hold_answer_secrets(&plain));
        assert!(!may_name_answer_secrets(r#"{"id":"x","owner":"o"}"#));
        assert!(may_name_answer_secrets(r#"{"password":"x"}"#));
        for held in [
            json!({"a": [{"b": {" Security-Token ": "t"}}]}),
            json!({"credential": {"ACCESS": "ak"}}),
            json!([{"x": {"Password": 1}}]),
        ] {
            assert!(may_hold_answer_secrets(&held), "{held}");
        }
        // Every key masking acts on is one the check sees.
        for name in ANSWER_SECRETS.iter().chain(&["access", "Security-Token"]) {
            let mut answer = json!({ "deep": [{ *name: "value-1" }] });
            assert!(may_hold_answer_secrets(&answer), "{name}");
            // The byte check that spares parsing an answer stored verbatim sees it too.
            assert!(may_name_answer_secrets(&answer.to_string()), "{name}");
            if *name == "access" || *name == "Security-Token" {
                continue;
            }
            assert!(!mask_answer_json(&mut answer, &|v: &str| v.to_owned()).is_empty(), "{name}");
        }
    }

    #[test]
    fn an_answer_handing_out_keys_has_them_masked_and_the_key_id_pseudonymised() {
        let mut answer = serde_json::json!({
            "credential": {"access": "HSTAAK", "secret": "sk-1", "securitytoken": "st-2",
                           "expires_at": "2026-12-02T15:04:05.000000Z"},
            "credentials": [{"access": "PERMAK", "status": "active"}],
            "server": {"adminPass": "np-3"},
            "token": {"user": {"password_expires_at": "2027-01-01T00:00:00.000000Z"}},
            "image": {"img_signature": "sig", "access": "not-a-key"},
        });
        let found = mask_answer_json(&mut answer, &|v: &str| format!("{}-pseudo", v.len()));
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["HSTAAK", "sk-1", "st-2", "PERMAK", "np-3"]);
        assert_eq!(answer["credential"]["access"], "6-pseudo");
        assert_eq!(answer["credential"]["secret"], PLACEHOLDER);
        assert_eq!(answer["credential"]["securitytoken"], PLACEHOLDER);
        assert_eq!(answer["credential"]["expires_at"], "2026-12-02T15:04:05.000000Z");
        assert_eq!(answer["credentials"][0]["access"], "6-pseudo");
        assert_eq!(answer["server"]["adminPass"], PLACEHOLDER);
        assert_eq!(
            answer["token"]["user"]["password_expires_at"],
            "2027-01-01T00:00:00.000000Z"
        );
        assert_eq!(answer["image"]["img_signature"], "sig");
        assert_eq!(answer["image"]["access"], "not-a-key");
    }

    #[test]
    fn tokens_and_keys_an_answer_hands_out_are_masked_and_a_v3_token_body_is_kept() {
        let mut answer = serde_json::json!({
            "access": {"token": {"id": "tok-v2", "expires": "2026-12-02T15:04:05Z"}},
            "apiKey": "ak-9",
            "private_key": "-----BEGIN-----",
            "session": {"token": "tok-s"},
            "token": {"methods": ["password"], "catalog": [{"type": "image"}]},
        });
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["-----BEGIN-----", "ak-9", "tok-s", "tok-v2"]);
        assert_eq!(answer["access"]["token"]["id"], PLACEHOLDER);
        assert_eq!(answer["access"]["token"]["expires"], "2026-12-02T15:04:05Z");
        assert_eq!(answer["token"]["catalog"][0]["type"], "image");

        // A secret held in an array or an object is masked too.
        let mut answer = serde_json::json!({
            "password": ["p-1"],
            "access_token": {"value": "a-1", "expires_in": 3600},
            "secret": ["s-1", {"k": "s-2"}],
        });
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["a-1", "p-1", "s-1", "s-2"]);
        assert_eq!(answer["access_token"]["expires_in"], 3600);
    }

    #[test]
    fn answer_fields_ending_in_password_or_secret_are_masked_and_their_prefixes_kept() {
        let mut answer = serde_json::json!({
            "db": {"db_password": "p-1", "Root-Passwd": "p-2"},
            "adminPassword": "p-3",
            "shared_secret": 7,
            "password_expires_at": "2027-01-01",
            "secret_id": "kept",
            "has_secret": true,
        });
        let plain = serde_json::json!({"db": {"db_password": "p"}});
        assert!(may_hold_answer_secrets(&plain));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["7", "p-1", "p-2", "p-3"]);
        assert_eq!(answer["password_expires_at"], "2027-01-01");
        assert_eq!(answer["secret_id"], "kept");
        assert_eq!(answer["has_secret"], true);
    }

    #[test]
    fn every_spelling_of_a_secret_an_answer_hands_out_is_masked_and_page_tokens_kept() {
        let mut answer = serde_json::json!({
            "secretKey": "a-1", "SecretKey": "a-2", "accessToken": "a-3", "refreshToken": "a-4",
            "authToken": "a-5", "privateKey": "a-6", "sessionToken": "a-7", "auth_token": "a-8",
            "session_token": "a-9", "X-Auth-Token": "b-1", "Authorization": "b-2",
            "secret_access_key": "b-3", "sk": "b-4", "pwd": "b-5", "pass": "b-6",
            "db_pass": "b-7", "admin_pass": "b-8", "ssh_private_key": "b-9",
            "next_token": "page-2", "nextToken": "page-3", "page_token": "page-4",
            "signature": "public-sig", "key_fingerprint": "fp", "disk_format": "qcow2",
        });
        assert!(may_hold_answer_secrets(&answer));
        assert!(may_name_answer_secrets(&answer.to_string()));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values.len(), 18, "{values:?}");
        assert!(values.iter().all(|v| v.starts_with("a-") || v.starts_with("b-")), "{values:?}");
        for kept in ["next_token", "nextToken", "page_token", "signature", "key_fingerprint", "disk_format"] {
            assert_ne!(answer[kept], PLACEHOLDER, "{kept}");
        }
    }

    #[test]
    fn header_values_have_credentials_in_relative_urls_and_parameters_masked() {
        for (value, masked) in [
            ("/next?token=t-1&limit=1", "/next?token=REDACTED&limit=1"),
            ("0; url=/x?access_token=t-1", "0; url=/x?access_token=REDACTED"),
            ("</x?token=t-1>; rel=\"next\"", "</x?token=REDACTED>; rel=\"next\""),
            ("/x;token=t-1", "/x;token=REDACTED"),
            ("for=192.0.2.1;token=t-1", "for=192.0.2.1;token=REDACTED"),
            ("https://h/x;token=t-1?a=1", "https://h/x;token=REDACTED?a=1"),
        ] {
            let (got, found) = mask_header_value(value).unwrap();
            assert_eq!(got, masked, "{value}");
            assert_eq!(found[0].value, "t-1", "{value}");
            assert_eq!(mask_header_value(masked), None, "{masked}");
        }
        for kept in ["application/json; charset=utf-8", "/v2/images?limit=1&marker=m", "max-age=0"] {
            assert_eq!(mask_header_value(kept), None, "{kept}");
        }
    }

    #[test]
    fn credentials_in_urls_an_answer_holds_are_masked_and_the_rest_of_the_url_kept() {
        let (masked, found) = mask_urls(
            "see https://b.obs.example.com/i.qcow2?AccessKeyId=AK&Expires=1&Signature=S%2B1&x-obs-security-token=T#top and \
             <https://u:pw-1@h/x>; rel=next, mysql://root:pw-2@db/x?charset=utf8",
        )
        .unwrap();
        assert_eq!(
            masked,
            "see https://b.obs.example.com/i.qcow2?AccessKeyId=REDACTED&Expires=1&Signature=REDACTED&x-obs-security-token=REDACTED#top and \
             <https://u:REDACTED@h/x>; rel=next, mysql://root:REDACTED@db/x?charset=utf8"
        );
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["AK", "S+1", "T", "pw-1", "pw-2"]);
        for kept in ["/v2/images?limit=1", "https://h/v2/images?limit=1&marker=m", "ssh://git@h/r", "no url"] {
            assert_eq!(mask_urls(kept), None, "{kept}");
        }
        let mut answer = serde_json::json!({"file": {"url": "https://h/f?token=t-1"}});
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        assert_eq!(answer["file"]["url"], "https://h/f?token=REDACTED");
        assert_eq!(found[0].value, "t-1");
    }
}
