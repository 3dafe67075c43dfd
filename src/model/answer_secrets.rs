//! Credentials an *answer* hands out: the secret key and security token of IAM's access keys,
//! tokens, passwords, and credentials inside URLs (`?Signature=…` of a presigned download URL,
//! `user:password@` of a connection string). They are masked before an answer is stored, like
//! the request's credentials ([`crate::model::credentials`]), but by narrower rules: answers are
//! data a client reads, so a field is a secret by its whole name or by how it ends, never by a
//! part (`password_expires_at`, Glance's `img_signature` and `secret_id` stay).

use serde_json::Value;

use crate::model::credentials::{
    self, Found, compact, ends_in_word_pass, is_token_name, mask_credential, mask_json_text,
    without_trailing_digits,
};
use crate::model::urls::{mask_text_urls, may_hold_text_urls};

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
    // The grant an OAuth 1 consumer trades for an access token (Keystone's `authorize` answer).
    "oauthverifier",
    "authorization",
    // Huawei's secret key (`sk`) and access key id (`ak`) when an answer names them so.
    "sk",
    "ak",
    // Session identifiers: whoever holds one is signed in (as in a request).
    "phpsessid",
    "sessionkey",
    // What other Huawei Cloud services hand out beside IMS and IAM, recorded through the same
    // proxy: a secret manager's secret (`version.secret_string`, `secret_binary`), a key
    // service's data key in plain (`plain_text`, `plain_text_base64`), a kubeconfig's client
    // key (`users[].user.client-key-data`), a virtual MFA device's seed (`base32_string_seed`)
    // and an account's recovery codes (`recovery_codes`: a list, by its plural).
    "secretstring",
    "secretbinary",
    "plaintext",
    // `plain_text_base64`: trailing digits do not count.
    "plaintextbase",
    "clientkeydata",
    "base32stringseed",
    "recoverycode",
];

/// Whole names (in [`compact`] form) that are secrets when they hold a string or a number
/// (`"credentials": "…"`), but not when they hold an object or a list of objects: IAM's
/// `credential` objects and Keystone's `credentials` list describe keys (their `id`s address
/// them; their secrets are masked by their own names, their key ids pseudonymised).
const SCALAR_SECRETS: &[&str] = &["credential", "credentials", "secrets", "passwords"];

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
    // Key material in a named encoding (`privateKeyPem`, `private_key_der`).
    "privatekeypem",
    "privatekeyder",
    "privatekeydata",
    "privatekeycontent",
    // A one-time password's seed under another name (`totp_secret_seed`).
    "secretseed",
    // A JSON Web Token by name (`jwt`, `id_jwt`), as a request's parameter is.
    "jwt",
    "secretkey",
    "secretaccesskey",
    "apikey",
    // `root_pwd`, `adminPwd`.
    "pwd",
    // A password's hash or digest is as good as the password to a cracker.
    "passwordhash",
    "passwdhash",
    "pwdhash",
    "passworddigest",
    // Key material: `signing_key`, `encryption_key`, `master_key`, `hmac_key`, Swift's temp-URL
    // keys (`temp_url_key`, `temp_url_key_2`).
    "signingkey",
    "encryptionkey",
    "masterkey",
    "hmackey",
    "tempurlkey",
    // An API gateway's AppCode (`app_code`), itself the credential a client sends.
    "appcode",
    // `session_id`, `sessionid`, `JSESSIONID`.
    "sessionid",
];

/// Objects (in [`compact`] form) whose `access` field is an access key id (`credential.access`,
/// `credentials[].access`): replaced by a pseudonym, so the answer keeps its shape.
const KEY_HOLDERS: &[&str] = &["credential", "credentials"];

/// Whole names (in [`compact`] form) that are secrets when they hold text: a request's cookies,
/// or those a sign-in hands out, written as a field (`"headers": {"Cookie": "sid=…"}`); a number
/// under such a name is a setting (`"cookie": 3600`).
const TEXT_SECRETS: &[&str] = &["cookie", "cookies", "setcookie"];

/// How an answer field's name makes it a secret.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SecretName {
    /// By the whole name ([`ANSWER_SECRETS`]), its ending ([`ANSWER_SECRET_ENDINGS`]:
    /// `db_password`, `admin_pass`, `signing_key`) or as a token's (`authToken`): masked
    /// whatever it holds.
    Always,
    /// [`SCALAR_SECRETS`]: masked when it holds a string, a number or a list of them.
    Scalar,
    /// [`TEXT_SECRETS`]: masked when it holds a string or a list of strings.
    Text,
}

/// Whether, and how, an answer field named `name` (any case or spelling; trailing digits do
/// not count, `temp_url_key_2` is `temp_url_key`) holds a credential.
fn secret_name(name: &str) -> Option<SecretName> {
    let compact = compact(name);
    let compact = without_trailing_digits(&compact);
    if ANSWER_SECRETS.contains(&compact) || is_token_name(compact) {
        return Some(SecretName::Always);
    }
    if SCALAR_SECRETS.contains(&compact) {
        return Some(SecretName::Scalar);
    }
    if TEXT_SECRETS.contains(&compact) {
        return Some(SecretName::Text);
    }
    let ends_secret = |compact: &str| {
        ANSWER_SECRET_ENDINGS
            .iter()
            // `pass` only as a word of its own: `bypass` and `compass` are no secrets.
            .any(|end| compact.ends_with(end) && (*end != "pass" || ends_in_word_pass(name)))
    };
    if ends_secret(compact) {
        return Some(SecretName::Always);
    }
    // A list of them by its plural (`tokens`, `api_keys`, `access_tokens`): its strings and
    // numbers, not the objects that describe them.
    let singular = compact.strip_suffix('s').filter(|s| !s.ends_with('s'))?;
    (ANSWER_SECRETS.contains(&singular) || is_token_name(singular) || ends_secret(singular))
        .then_some(SecretName::Scalar)
}

/// Whether an answer field named `name` holds a credential (see [`secret_name`]).
fn is_answer_secret(name: &str) -> bool {
    secret_name(name).is_some()
}

/// Whether a field named `name` holding `item` is masked: a secret name's value always,
/// whatever it looks like (a base64 key may start with `/`, a password with `https://`); a
/// [`SCALAR_SECRETS`] name's unless it holds objects. There is no exemption by the value's
/// shape: a link-like name (`password_reset_url`, `forgot_password_link`, `…_uri`, `…_href`)
/// ends in no secret word and is not a secret name in the first place, and a link's own
/// credentials are masked as in any string. `"forgot_password": "https://…"` is masked.
fn masks(name: &str, item: &Value) -> bool {
    match secret_name(name) {
        Some(SecretName::Always) => true,
        Some(SecretName::Scalar) => match item {
            Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
            other => !other.is_object(),
        },
        Some(SecretName::Text) => match item {
            Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_string),
            other => other.is_string(),
        },
        None => false,
    }
}

/// Masks, in place, the credentials an answer body hands out: each secret field (see
/// [`is_answer_secret`]) at any depth holds [`PLACEHOLDER`], so do the credentials of every URL
/// in a string ([`mask_text_urls`]: URLs, relative ones too), and the `access` key id of a `credential` object (or of each of
/// `credentials`) is replaced by `pseudonym(access)`. A `token` object is kept (a Keystone v3
/// token body is data a client reads), but the `id` in it is masked (Keystone v2's token).
/// Returns what was replaced (key ids included), for the leak gate.
pub fn mask_answer_json(value: &mut Value, pseudonym: &dyn Fn(&str) -> String) -> Vec<Found> {
    let mut found = Vec::new();
    mask_answer_into(value, false, pseudonym, &mut found);
    // A key id replaced where it is named is replaced wherever else the answer holds it too
    // (Keystone's `links.self` of an EC2 credential ends in it), or the leak gate would find it.
    let ids: Vec<(String, String)> = (found.iter())
        .filter(|f| f.label.starts_with("access key id") && f.value.len() >= 8)
        .map(|f| (f.value.clone(), pseudonym(&f.value)))
        .collect();
    if !ids.is_empty() {
        replace_in_strings(value, &ids);
    }
    found
}

/// Replaces, in every string of `value` (not its object keys), each `(real, pseudonym)` pair's
/// real value by the pseudonym.
fn replace_in_strings(value: &mut Value, pairs: &[(String, String)]) {
    match value {
        Value::String(text) => {
            for (real, pseudonym) in pairs {
                if text.contains(real.as_str()) {
                    *text = text.replace(real.as_str(), pseudonym);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| replace_in_strings(i, pairs)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_in_strings(v, pairs)),
        _ => {}
    }
}

/// Whether `value` has, at any depth, something [`mask_answer_json`] could act on (a secret
/// field, an `access` key id, a string with a URL holding a query or user information). When
/// not, masking would change nothing, so the answer need not be copied to be masked (most
/// answers: a copy of a parsed body is dear).
pub fn may_hold_answer_secrets(value: &Value) -> bool {
    match value {
        Value::Object(map) => crate::model::credentials::opaque_blob(map)
            || credentials::secret_pair(map, &is_answer_secret).is_some()
            || map.iter().any(|(name, item)| {
            may_be_secret_name(name)
                && (is_answer_secret(name) || compact(name) == "access")
                || may_hold_answer_secrets(item)
        }),
        Value::Array(items) => items.iter().any(|item| {
            may_hold_answer_secrets(item)
                // A `[name, value]` pair naming a secret or a credential header.
                || matches!(item, Value::Array(pair) if pair.len() == 2
                    && pair[0].as_str().is_some_and(is_answer_secret))
        }),
        Value::String(text) => {
            may_hold_text_urls(text)
                || (text.trim_start().starts_with(['{', '[']) || text.contains('='))
                    && may_name_answer_secrets(text)
        }
        _ => false,
    }
}

/// A cheap first look at a field name: every name [`is_answer_secret`] accepts (and `access`)
/// holds one of these in some letter case. This runs over every key of every recorded answer.
fn may_be_secret_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    ["pass", "pwd", "secret", "key", "token", "auth", "sk", "ak", "access", "sess", "cred", "appcode", "jwt", "cookie",
     "plain", "seed", "recovery"]
        .iter()
        .any(|word| {
            bytes
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        })
}

/// A text answer that is not JSON as it stands, with what it hands out masked: JSON after a
/// byte-order mark, a form (`access_token=…&expires_in=…`, as OAuth token endpoints answer),
/// or the `"name": value` pairs of JSON a parser refuses (`NaN`, several documents, text after
/// it, nested past the parser's limit: see [`crate::model::json_like`]). `None` when it holds
/// nothing to mask.
pub fn mask_answer_text(text: &str) -> Option<(String, Vec<Found>)> {
    mask_answer_text_known(text, may_name_answer_secrets(text))
}

/// [`mask_answer_text`] when [`may_name_answer_secrets`] of `text` is already known.
pub(crate) fn mask_answer_text_known(text: &str, may_name: bool) -> Option<(String, Vec<Found>)> {
    if let Some(bare) = text.strip_prefix('\u{feff}')
        && let Ok(mut json) = serde_json::from_str::<Value>(bare)
    {
        let found = mask_answer_json(&mut json, &str::to_owned);
        return (!found.is_empty()).then(|| (format!("\u{feff}{json}"), found));
    }
    // A form, after a byte-order mark too.
    let (mark, form) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    if crate::model::credentials::looks_like_form_lines(form.as_bytes()) {
        return mask_answer_form(form).map(|(masked, found)| (format!("{mark}{masked}"), found));
    }
    // The lexical last resort reads every pair: only for text that could name a secret at all
    // (most answers name none, and this runs on every recorded one).
    if !may_name {
        return None;
    }
    if crate::model::xml_like::looks_like_xml(text) {
        return crate::model::xml_like::mask_elements(
            text,
            &|name| masks(name, &Value::String(String::new())),
            &|name| format!("credential element {name} of the answer body"),
        );
    }
    // Assignments a line (an env, properties or INI file), then JSON a parser refuses.
    crate::model::assignments::mask_lines_then(text, &names_text_secret, &answer_field_label, |text| {
        crate::model::json_like::mask_fields(
            text,
            &|name, value| masks(name, &Value::String(value.to_owned())),
            &answer_field_label,
        )
    })
}

/// Whether JSON text `text` could hold something [`may_hold_answer_secrets`] finds: a key
/// holding `secret`, `token`, `pass`, `pwd`, `access`, `key`, `auth`, `sess`, `cred`, `appcode`, `jwt`, `cookie`, `plain`, `seed` or `recovery` in any letter case, a
/// key `sk` or `ak`, a SAML `assertion`, a URL with a query or user information, or any backslash (a key may be
/// written with escapes). False for most answers, which are then not parsed to be masked.
pub fn may_name_answer_secrets(text: &str) -> bool {
    if memchr::memchr2(b'\\', b'?', text.as_bytes()).is_some()
        || crate::model::urls::may_hold_url_credentials(text)
    {
        return true;
    }
    thread_local! {
        /// The lower-case copy of the text searched, kept between calls.
        static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LOWER.with_borrow_mut(|lower| {
        lower.clear();
        lower.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
        let found = ANSWER_SECRET_WORDS.is_match(&lower[..]);
        // An answer of many megabytes does not stay held by the thread.
        if lower.capacity() > 1 << 20 {
            *lower = Vec::new();
        }
        found
    })
}

/// The words [`may_name_answer_secrets`] looks for in a lower-cased copy of the answer, all in
/// one SIMD pass ([`Words`]). This runs on every recorded answer: when the list had fourteen
/// words, the pass cost 3,200 instructions less than a search per word (1.6 % of a
/// recording's), and a case-insensitive automaton over the answer itself (no SIMD pass) twice
/// the searches.
///
/// Their order sets how the searcher groups them (its buckets), so what a pass costs: of the
/// orders tried (callgrind, aho-corasick 1.1.5), this one costs least on an IMS image answer:
/// about 100 instructions more than the fifteen words before `plain`, `recovery` and `seed`
/// joined them, where the three appended at the end cost 800 more.
const ANSWER_SECRET_WORDS_LIST: [&str; 18] = [
    "secret", "token", "pass", "plain", "pwd", "access", "key", "auth", "sess", "cred", "appcode",
    "\"sk\"", "\"ak\"", "assertion", "recovery", "jwt", "seed", "cookie",
];

/// A SIMD searcher of all the words at once (Teddy) where the CPU has one; else a searcher of
/// each word.
enum Words {
    AtOnce(aho_corasick::packed::Searcher),
    Each(Vec<memchr::memmem::Finder<'static>>),
}

impl Words {
    fn is_match(&self, lower: &[u8]) -> bool {
        match self {
            Words::AtOnce(searcher) => searcher.find(lower).is_some(),
            Words::Each(finders) => finders.iter().any(|word| word.find(lower).is_some()),
        }
    }

    /// A searcher of each word, one after the other.
    fn each() -> Words {
        Words::Each(
            ANSWER_SECRET_WORDS_LIST
                .iter()
                .map(|word| memchr::memmem::Finder::new(word.as_bytes()).into_owned())
                .collect(),
        )
    }
}

static ANSWER_SECRET_WORDS: std::sync::LazyLock<Words> = std::sync::LazyLock::new(|| {
    match aho_corasick::packed::Searcher::new(ANSWER_SECRET_WORDS_LIST) {
        Some(searcher) => Words::AtOnce(searcher),
        None => Words::each(),
    }
});

fn mask_answer_into(
    value: &mut Value,
    holder: bool,
    pseudonym: &dyn Fn(&str) -> String,
    found: &mut Vec<Found>,
) {
    match value {
        Value::Object(map) => {
            if crate::model::credentials::opaque_blob(map)
                && let Some(blob) = map.get_mut("blob")
            {
                mask_blob(blob, found);
            }
            // A name and value written as an object whose name is a secret's: its value.
            if let Some((name, field)) = credentials::secret_pair(map, &is_answer_secret)
                && let Some(value) = map.get_mut(field)
            {
                // Whatever it holds, to its last string or number.
                mask_as(&name, "credential pair", credentials::mask_all, value, found);
            }
            for (name, item) in map.iter_mut() {
                crate::model::credentials::for_untyped_blobs(name, item, |blob| mask_blob(blob, found));
                // Cookies as a list of names and values (a HAR's `cookies`).
                if credentials::is_cookie_list(name) && item.is_array() {
                    mask_as(name, "credential field", mask_credential, item, found);
                }
                // A list of secrets' objects (`"passwords": [{"value": …}]`): the value each holds.
                if secret_name(name) == Some(SecretName::Scalar)
                    && let Value::Array(items) = item
                {
                    for value in items.iter_mut().filter_map(|i| i.get_mut("value")).filter(|v| !v.is_object()) {
                        mask_as(name, "credential field", mask_credential, value, found);
                    }
                }
                let normal = compact(name);
                if masks(name, item) {
                    // Whatever its type: an array, `{"id": …}`, a secret's object (a token's
                    // object keeps its description: see `mask_credential`).
                    mask_as(name, "credential field", mask_credential, item, found);
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
        Value::Array(items) => {
            // Headers written as a list of pairs (`[["Cookie", "sid=…"], …]`).
            credentials::for_secret_pairs_in_list(items, &is_answer_secret, |name, value| {
                mask_as(name, "credential pair", mask_credential, value, found);
            });
            items
                .iter_mut()
                .for_each(|i| mask_answer_into(i, holder, pseudonym, found));
        }
        Value::String(text) => {
            if let Some((masked, values)) = mask_text_urls(text) {
                *text = masked;
                found.extend(values);
            } else if let Some((masked, values)) =
                mask_json_text(text, &mut |json| mask_answer_json(json, pseudonym))
            {
                *text = masked;
                found.extend(values);
            } else if text.contains('=')
                && let Some((masked, values)) = mask_assignment_text(text)
            {
                // A form or an assignment in a string (`"env": ["OS_PASSWORD=…"]`, a request
                // body echoed).
                *text = masked;
                found.extend(values);
            }
        }
        _ => {}
    }
}

/// Masks what `item` holds as a secret named `name` with `mask` ([`mask_credential`], or
/// [`credentials::mask_all`] for every string and number in it), each labelled `what` `name`
/// of the answer body.
fn mask_as(
    name: &str,
    what: &str,
    mask: fn(&str, &mut Value, &mut Vec<Found>),
    item: &mut Value,
    found: &mut Vec<Found>,
) {
    let mut masked = Vec::new();
    mask(name, item, &mut masked);
    found.extend(masked.into_iter().map(|f| Found {
        label: format!("{what} {name} of the answer body"),
        value: f.value,
    }));
}

/// Whether a name in an answer's text (a form's, an assignment's) is a secret's: as a field
/// holding a string would be ([`masks`]).
fn names_text_secret(name: &str) -> bool {
    masks(name, &Value::String(String::new()))
}

/// How a secret found in an answer's text is named.
fn answer_field_label(name: &str) -> String {
    format!("credential field {name} of the answer body")
}

/// An answer that is a form (an OAuth token endpoint's `access_token=…&expires_in=…`), its
/// values masked where an answer's names say so (see [`secret_name`]: `key=` and `auth=` are
/// data in an answer, where a request's query would mask them).
fn mask_answer_form(text: &str) -> Option<(String, Vec<Found>)> {
    crate::model::forms::mask_form_lines_by(text, &names_text_secret, &answer_field_label)
}

/// A string of an answer that is one form or one assignment, without white space (an env
/// list's `OS_PASSWORD=…`, an echoed `grant_type=password&password=…`), with its secret values
/// masked; `None` when it holds none. Text with spaces is free text, whose `name=value` lists
/// are data.
fn mask_assignment_text(text: &str) -> Option<(String, Vec<Found>)> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    if credentials::looks_like_form_lines(text.as_bytes()) {
        return mask_answer_form(text);
    }
    crate::model::assignments::mask_lines(text, &names_text_secret, &answer_field_label)
}

/// Masks a Keystone credential's blob in an answer (see [`crate::model::credentials::opaque_blob`]).
fn mask_blob(blob: &mut Value, found: &mut Vec<Found>) {
    mask_as("blob", "credential field", mask_credential, blob, found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::credentials::PLACEHOLDER;

    #[test]
    fn jwts_and_private_key_material_in_an_answer_are_masked_and_key_metadata_kept() {
        let text = r#"{"jwt":"eyJhbGciOiJIUzI1NiJ9.e30.sig1","id_jwt":"jwt-secret-2","privateKeyPem":"-----BEGIN KEY-----k3","private_key_size":2048,"cookie":3600,"id":"x"}"#;
        assert!(may_name_answer_secrets(text));
        let mut answer: Value = serde_json::from_str(text).unwrap();
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &str::to_owned);
        for name in ["jwt", "id_jwt", "privateKeyPem"] {
            assert_eq!(answer[name], PLACEHOLDER, "{name}: {answer}");
        }
        assert_eq!(found.len(), 3, "{answer}");
        assert_eq!(answer["private_key_size"], 2048);
        assert_eq!(answer["cookie"], 3600);
        assert_eq!(answer["id"], "x");
    }

    #[test]
    fn secret_lists_cookies_as_fields_and_secret_name_value_pairs_are_masked() {
        let text = r#"{"secrets":["s-1","s-2"],"headers":{"Cookie":"sid=c-3","X-Auth-Token":"t-4"},
            "metadata":[{"key":"password","value":"p-5"},{"key":"os_type","value":"Linux"}],
            "Tags":[{"Key":"db_secret","Value":"d-6"}],"env":[{"name":"OS_PASSWORD","value":"e-7"}],
            "cookies":["a=c-8"],"cookie_ttl":60,"set_cookie":600}"#;
        assert!(may_name_answer_secrets(text));
        let mut answer: Value = serde_json::from_str(text).unwrap();
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &str::to_owned);
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["a=c-8", "d-6", "e-7", "p-5", "s-1", "s-2", "sid=c-3", "t-4"], "{answer}");
        assert_eq!(answer["metadata"][1]["value"], "Linux");
        assert_eq!(answer["metadata"][0]["key"], "password");
        assert_eq!(answer["Tags"][0]["Value"], PLACEHOLDER);
        // Lists by a plural, pairs whatever their value, in other spellings, header pairs,
        // cookie lists, and assignments and forms in strings.
        let more_text = r#"{"tokens":["t-1"],"api_keys":["k-2"],"access_tokens":[{"id":"kept-id"}],
            "m":[{"key":"password","value":98765},{"k":"db_secret","v":["v-3"]},
                 {"ParameterKey":"AdminPassword","ParameterValue":"v-4"}],
            "headers":[["Cookie","sid=c-5"],["Authorization","Bearer a-6"],["Accept","*/*"]],
            "cookies":[{"name":"sid","value":"c-7"}],"env":["OS_PASSWORD=e-8","HOME=/root"],
            "echo":"grant_type=password&password=f-9"}"#;
        let mut more: Value = serde_json::from_str(more_text).unwrap();
        assert!(may_hold_answer_secrets(&more));
        let more_found = mask_answer_json(&mut more, &str::to_owned);
        let mut values: Vec<&str> = more_found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(
            values,
            ["98765", "Bearer a-6", "c-7", "e-8", "f-9", "k-2", "sid=c-5", "t-1", "v-3", "v-4"],
            "{more}"
        );
        assert_eq!(more["access_tokens"][0]["id"], "kept-id");
        assert_eq!(more["headers"][2][1], "*/*");
        assert_eq!(more["env"], serde_json::json!(["OS_PASSWORD=REDACTED", "HOME=/root"]));
        assert_eq!(more["echo"], "grant_type=password&password=REDACTED");
        assert_eq!(more["cookies"][0]["name"], "sid");
        // A number under a cookie's name is a setting; a list of secrets' descriptions is data.
        assert_eq!(answer["set_cookie"], 600);
        let mut listing = serde_json::json!({"secrets": [{"name": "db", "secret_ref": "https://kms/v1/secrets/1"}]});
        mask_answer_json(&mut listing, &str::to_owned);
        assert_eq!(listing["secrets"][0]["name"], "db");
    }

    #[test]
    fn an_answers_forms_and_assignments_are_read_by_answer_names_and_free_text_is_data() {
        // Settings and a request's credential words (`key`, `auth`) are data in an answer.
        for kept in ["key=value\n", "auth=basic\nmode=x\n", "password_expires_days=90\n", "PASSWORD_MIN=8"] {
            assert_eq!(mask_answer_text(kept), None, "{kept:?}");
        }
        let mut answer = serde_json::json!({
            "note": "key=value", "cmd": "export PASS=1", "filter": "visibility=public&key=os_type",
            "m": [{"key": "password", "value": {"v": "o-1"}}], "passwords": [{"value": "l-2"}],
        });
        let found = mask_answer_json(&mut answer, &str::to_owned);
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["l-2", "o-1"], "{answer}");
        assert_eq!(answer["note"], "key=value");
        assert_eq!(answer["cmd"], "export PASS=1");
        assert_eq!(answer["filter"], "visibility=public&key=os_type");
        let (masked, _) = mask_answer_text("expires_in=3600&access_token=a-3\n").unwrap();
        assert_eq!(masked, "expires_in=3600&access_token=REDACTED\n");
    }

    #[test]
    fn a_keystone_credentials_list_has_each_opaque_blob_masked() {
        let mut answer = serde_json::json!({"credentials": [
            {"id": "c1", "type": "totp", "blob": "GEZDGNBVGY3TQOJQ", "user_id": "u1"},
            {"id": "c2", "type": "cert", "blob": "-----BEGIN PRIVATE KEY-----x", "user_id": "u1"},
        ]});
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &str::to_owned);
        assert_eq!(found.len(), 2);
        assert_eq!(answer["credentials"][0]["blob"], PLACEHOLDER);
        assert_eq!(answer["credentials"][1]["blob"], PLACEHOLDER);
        assert_eq!(answer["credentials"][0]["id"], "c1");
    }

    /// The one-pass search finds a word exactly where a search for each word over a
    /// lower-cased copy does: words in every letter case, cut, glued to others, among bytes
    /// that lower-case to nothing alike (non-ASCII letters).
    #[test]
    fn the_words_are_found_in_any_letter_case_as_one_search_per_word_finds_them() {
        let each_word = |text: &str| {
            let lower = text.to_ascii_lowercase();
            ANSWER_SECRET_WORDS_LIST.iter().any(|word| lower.contains(word))
        };
        let pieces = [
            "Secret", "TOK", "en", "pa", "SS", "pWd", "acc", "ESS", "KeY", "aUtH", "SeSs", "CRED",
            "appCode", "\"Sk\"", "\"aK\"", "asSertion", "JwT", "CooKie", "PlaIn", "sEEd", "recOVery", "\"s", "k\"", "x", "{\"id\":1}", "é",
            "İ", "ſ", "K", " ", "\"",
        ];
        let fallback = Words::each();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 6) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let quick = may_name_answer_secrets(&text);
            let slashes_or_urls = text.contains(['\\', '?']) || crate::model::urls::may_hold_url_credentials(&text);
            assert_eq!(quick, slashes_or_urls || each_word(&text), "{text:?}");
            // The fallback, where the CPU has no SIMD search, finds the same.
            let lower = text.to_ascii_lowercase();
            assert_eq!(fallback.is_match(lower.as_bytes()), each_word(&text), "{text:?}");
            assert_eq!(ANSWER_SECRET_WORDS.is_match(lower.as_bytes()), each_word(&text), "{text:?}");
        }
    }

    #[test]
    fn only_answers_with_a_key_masking_acts_on_are_copied_to_be_masked() {
        use serde_json::json;
        let plain = json!({"id": "x", "tags": [{"name": "a"}], "owner": "o", "accessed": 1});
        assert!(!may_hold_answer_secrets(&plain));
        assert!(!may_name_answer_secrets(r#"{"id":"x","owner":"o"}"#));
        assert!(may_name_answer_secrets(r#"{"password":"x"}"#));
        // Any letter case, a backslash, a query, a URL's user information; a long text, twice
        // on one thread (the lower-case copy is reused).
        for named in [r#"{"PassWord":"x"}"#, r#"{"S\u0065cret":1}"#, "x?y", "a mysql://u:p@db b", r#"{"SK":"v"}"#] {
            assert!(may_name_answer_secrets(named), "{named}");
        }
        let long = format!("{{\"a\":\"{}\",\"AuthKey\":1}}", "z".repeat(100_000));
        assert!(may_name_answer_secrets(&long));
        assert!(!may_name_answer_secrets(&long.replace("AuthKey", "other")));
        for held in [
            json!({"a": [{"b": {" Security-Token ": "t"}}]}),
            json!({"credential": {"ACCESS": "ak"}}),
            json!([{"x": {"Password": 1}}]),
        ] {
            assert!(may_hold_answer_secrets(&held), "{held}");
        }
        // Every key masking acts on is one the check sees.
        for name in ANSWER_SECRETS.iter().chain(ANSWER_SECRET_ENDINGS).chain(&["access", "Security-Token"]) {
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

    /// What other Huawei Cloud services hand out, recorded through the same proxy as IMS: each
    /// secret masked, in the answer as each service writes it, and found by both quick checks.
    #[test]
    fn secrets_other_services_hand_out_are_masked_and_their_descriptions_kept() {
        use serde_json::json;
        let cases = [
            // A secret manager's secret version.
            json!({"version": {"version_metadata": {"id": "v1", "secret_name": "db"},
                               "secret_string": "o-1", "secret_binary": "o-2"}}),
            // A key service's data key.
            json!({"key_id": "k1", "plain_text": "o-3", "plain_text_base64": "o-4", "cipher_text": "c"}),
            // A cluster's kubeconfig, as JSON.
            json!({"kind": "Config", "users": [{"name": "user", "user": {
                "client-certificate-data": "cert", "client-key-data": "o-5"}}]}),
            // A virtual MFA device, an account's recovery codes, key material and seeds by other
            // names.
            json!({"virtual_mfa_device": {"serial_number": "s", "base32_string_seed": "o-6"}}),
            json!({"recovery_codes": ["o-7", "o-8"], "recovery_codes_left": 2}),
            json!({"privateKeyData": "o-9", "private_key_content": "p-1", "totp_secret_seed": "p-2"}),
        ];
        let mut values = Vec::new();
        let mut masked = Vec::new();
        for mut answer in cases {
            assert!(may_hold_answer_secrets(&answer), "{answer}");
            assert!(may_name_answer_secrets(&answer.to_string()), "{answer}");
            let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
            values.extend(found.into_iter().map(|f| f.value));
            masked.push(answer);
        }
        // What describes them is kept.
        assert_eq!(masked[0]["version"]["version_metadata"]["secret_name"], "db");
        assert_eq!(masked[1]["cipher_text"], "c");
        assert_eq!(masked[2]["users"][0]["user"]["client-certificate-data"], "cert");
        assert_eq!(masked[3]["virtual_mfa_device"]["serial_number"], "s");
        assert_eq!(masked[4]["recovery_codes_left"], 2);
        values.sort_unstable();
        assert_eq!(values, ["o-1", "o-2", "o-3", "o-4", "o-5", "o-6", "o-7", "o-8", "o-9", "p-1", "p-2"]);
    }

    #[test]
    fn a_key_id_pseudonymised_is_replaced_wherever_else_the_answer_holds_it() {
        // Keystone's EC2 credential: its own link ends in the access key id.
        let mut answer = serde_json::json!({"credential": {
            "access": "27d4cb633a204b75", "secret": "s-1", "user_id": "u1",
            "links": {"self": "http://k/v3/users/u1/credentials/OS-EC2/27d4cb633a204b75"},
        }});
        mask_answer_json(&mut answer, &|v: &str| format!("p{}", v.len()));
        assert_eq!(answer["credential"]["access"], "p16");
        assert_eq!(answer["credential"]["links"]["self"], "http://k/v3/users/u1/credentials/OS-EC2/p16");
        assert_eq!(answer["credential"]["user_id"], "u1");
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

        // A secret held in an array or an object is masked too; an object's description kept
        // (Huawei CSMS answers a secret's name and state under `secret`).
        let mut answer = serde_json::json!({
            "password": ["p-1"],
            "access_token": {"value": "a-1", "expires_in": 3600},
            "secret": {"id": "s-1", "name": "my-db-secret", "create_time": 1581507580000u64},
        });
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["a-1", "p-1", "s-1"]);
        assert_eq!(answer["access_token"]["expires_in"], 3600);
        assert_eq!(answer["secret"]["name"], "my-db-secret");
        assert_eq!(answer["secret"]["create_time"], 1581507580000u64);
        // `pass` only as a word of its own; a link is kept under a link-like name only.
        let mut answer = serde_json::json!({
            "bypass": 1, "compass": "n", "overpass": [1, 2],
            "admin_pass": "a-1", "adminPass": "a-2",
            "change_password_url": "/v3/users/u1/password",
            "db_password": "a-3",
        });
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["a-1", "a-2", "a-3"]);
        assert_eq!(answer["bypass"], 1);
        assert_eq!(answer["change_password_url"], "/v3/users/u1/password");
        // A relative URL handing out a token.
        let mut answer = serde_json::json!({"next": "/x?token=t-3", "first": "/v2/images?limit=1"});
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        assert_eq!(found[0].value, "t-3");
        assert_eq!(answer["next"], "/x?token=REDACTED");
        assert_eq!(answer["first"], "/v2/images?limit=1");
        // A JSON document nested in a string.
        let mut answer = serde_json::json!({"data": "{\"access_token\":\"a-9\"}"});
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        assert_eq!(found[0].value, "a-9");
        assert_eq!(answer["data"], r#"{"access_token":"REDACTED"}"#);
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
    fn pwd_names_session_ids_password_hashes_and_key_material_an_answer_hands_out_are_masked() {
        let mut answer = serde_json::json!({
            "root_pwd": "a-1", "adminPwd": "a-2", "session_id": "a-3", "sessionid": "a-4",
            "credentials": "a-5", "password_hash": "a-6", "signing_key": "a-7",
            "encryption_key": "a-8", "master_key": "a-9", "hmac_key": "b-1",
            "temp_url_key_2": "b-2", "JSESSIONID": "b-3", "app_code": "b-4",
            "credential": ["b-5"],
            // Data: kept.
            "password_expires_at": "2027-01-01", "img_signature": "sig", "next_page_token": "p-2",
            "signature_version": "4", "key_type": "rsa", "session_expires_at": "2027",
            "code": "IMS.0001",
        });
        assert!(may_hold_answer_secrets(&answer));
        assert!(may_name_answer_secrets(&answer.to_string()));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(
            values,
            ["a-1", "a-2", "a-3", "a-4", "a-5", "a-6", "a-7", "a-8", "a-9", "b-1", "b-2", "b-3", "b-4", "b-5"]
        );
        for kept in ["password_expires_at", "img_signature", "next_page_token", "signature_version",
                     "key_type", "session_expires_at", "code"] {
            assert_ne!(answer[kept], PLACEHOLDER, "{kept}");
        }
        // Keystone's credentials list and IAM's credential object are descriptions: their ids
        // stay, their secrets are masked by their own names.
        let mut answer = serde_json::json!({
            "credentials": [{"id": "cred-id-1", "type": "ec2", "blob": "{\"access\":\"x\",\"secret\":\"s-1\"}"}],
            "credential": {"id": "cred-id-2", "access": "AK", "secret": "s-2"},
        });
        let found = mask_answer_json(&mut answer, &|v: &str| format!("{v}-pseudo"));
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["AK", "s-1", "s-2"]);
        assert_eq!(answer["credentials"][0]["id"], "cred-id-1");
        assert_eq!(answer["credential"]["id"], "cred-id-2");
    }

    #[test]
    fn a_secret_named_field_is_masked_whatever_its_value_looks_like() {
        let mut answer = serde_json::json!({
            "credential": {"secret_access_key": "/wJalrXUtnFEMI", "secret_key": "+wJalrXUtn"},
            "db_password": "/Zx9qLm2", "api_key": "/ab12", "shared_secret": "https://s3cr3t",
            "forgot_password": "http://id.example/forgot",
            // Link-like names are no secret names: their links are kept.
            "password_reset_url": "https://id.example/reset", "forgot_password_link": "/forgot",
        });
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        assert_eq!(found.len(), 6, "{found:?}");
        assert_eq!(answer["password_reset_url"], "https://id.example/reset");
        assert_eq!(answer["forgot_password_link"], "/forgot");
        // The lexical last resort for text no parser takes reads values the same way.
        let (masked, _) = mask_answer_text(r#"{"db_password": "/Zx9", "n": NaN}"#).unwrap();
        assert!(!masked.contains("/Zx9"), "{masked}");
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


}
