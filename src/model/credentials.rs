//! Credentials outside the named headers: query parameters (`?access_token=`, `?X-Amz-Signature=`,
//! `?password=`), fields of JSON and form request bodies (`"password"`, `"client_secret"`), and
//! URL user information. Like credential headers they are never stored and never matched on:
//! their values are replaced with [`PLACEHOLDER`] before anything is written, and request keys
//! mask them too, so a client replaying with another token still matches.
//!
//! Pagination tokens (`page_token`, `next_token`, `marker`) are not credentials: they tell pages
//! apart, and masking them would make every page one request.

use serde_json::Value;

pub(crate) use crate::model::names::{
    compact, ends_in_word_pass, without_trailing_digits,
};
pub use crate::model::credential_names::is_credential_name;
pub(crate) use crate::model::credential_names::{is_container, is_credential_compact, is_token_name};
pub use crate::model::params::{
    mask_path, mask_query, shown_path, unmasked_in_path, unmasked_in_query,
};

pub use crate::model::forms::is_form;
pub(crate) use crate::model::forms::{looks_like_form_lines, mask_form_lines};

/// What a credential's value is replaced with, in stored requests and in request keys.
pub const PLACEHOLDER: &str = "REDACTED";

/// A credential found: where (`query parameter access_token`, `field password of the request
/// body`) and its real value, for the leak gate.
#[derive(Clone, PartialEq, Eq)]
pub struct Found {
    /// What it was found as (never the value).
    pub label: String,
    /// The real value.
    pub value: String,
}

// Hand-written so that printing what was found cannot leak it.
impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("label", &self.label)
            .field("value", &format_args!("<{} bytes hidden>", self.value.len()))
            .finish()
    }
}

/// Replaces, in place, the value of every credential field of a JSON document with
/// [`PLACEHOLDER`], at any depth. A credential field holding an object is searched too, and an
/// `id` directly inside it is masked (Keystone's `"token": {"id": "..."}`). Returns what was
/// replaced.
pub fn mask_json(value: &mut Value) -> Vec<Found> {
    let mut found = Vec::new();
    mask_json_into(value, &mut found);
    found
}

/// The credential a JSON-Patch operation sets (`{"op": "replace", "path": "/password",
/// "value": …}`, as Glance's and Nova's updates are written): the name its `path` ends with,
/// when that is a credential name. Its `value` is then masked whole.
fn patched_credential(map: &serde_json::Map<String, Value>) -> Option<String> {
    let path = map.get("path")?.as_str()?;
    if !map.contains_key("op") || !map.contains_key("value") {
        return None;
    }
    let last = path.rsplit('/').next()?.replace("~1", "/").replace("~0", "~");
    is_credential_name(&last).then_some(last)
}

/// Whether `map` is a Keystone credential (`/v3/credentials`: `{"blob": …, "type": …}`) whose
/// blob is the credential itself, to be masked whole: a TOTP seed, a certificate's key, any type
/// but `ec2`, whose blob is JSON with its `secret` masked inside (its `access` key id stays, to
/// tell credentials apart).
pub(crate) fn opaque_blob(map: &serde_json::Map<String, Value>) -> bool {
    matches!(map.get("blob"), Some(Value::String(blob)) if !blob.is_empty() && blob != PLACEHOLDER)
        && map
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.eq_ignore_ascii_case("ec2"))
}

/// Calls `each` on the blob of every Keystone credential object under `name` (`credential`, or
/// each of `credentials`) that has no `type` (`PATCH /v3/credentials/{id}` sends only what
/// changes): no type says it is an `ec2` pair, so its blob is masked whole too.
pub(crate) fn for_untyped_blobs(name: &str, item: &mut Value, mut each: impl FnMut(&mut Value)) {
    if !matches!(compact(name).as_str(), "credential" | "credentials") {
        return;
    }
    let objects: Vec<&mut serde_json::Map<String, Value>> = match item {
        Value::Object(map) => vec![map],
        Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).collect(),
        _ => Vec::new(),
    };
    for map in objects {
        if map.contains_key("type") {
            continue;
        }
        if let Some(blob) = map.get_mut("blob")
            && matches!(blob, Value::String(text) if !text.is_empty() && text != PLACEHOLDER)
        {
            each(blob);
        }
    }
}

/// The fields that name a name and value written as an object (metadata lists, tags, env
/// lists, CloudFormation parameters: `{"key": "password", "value": …}`).
pub(crate) const PAIR_NAMES: [&str; 7] = ["key", "name", "Key", "Name", "k", "ParameterKey", "property"];
/// The fields that hold the value of such a pair.
pub(crate) const PAIR_VALUES: [&str; 5] = ["value", "Value", "v", "ParameterValue", "val"];

/// The name a name-and-value object gives (see [`PAIR_NAMES`]) and the field holding its value,
/// when `map` is one and `is_secret` accepts the name.
pub(crate) fn secret_pair(
    map: &serde_json::Map<String, Value>,
    is_secret: &dyn Fn(&str) -> bool,
) -> Option<(String, &'static str)> {
    let name = PAIR_NAMES.iter().find_map(|field| map.get(*field)?.as_str())?;
    if !is_secret(name) {
        return None;
    }
    let value = PAIR_VALUES.iter().find(|field| map.contains_key(**field))?;
    Some((name.to_owned(), value))
}

/// Calls `each` on the value of every `[name, value]` pair of `items` (headers written as a
/// list of pairs, `[["Cookie", "sid=…"], …]`) whose name `is_secret` accepts.
pub(crate) fn for_secret_pairs_in_list(
    items: &mut [Value],
    is_secret: &dyn Fn(&str) -> bool,
    mut each: impl FnMut(&str, &mut Value),
) {
    for item in items {
        if let Value::Array(pair) = item
            && let [Value::String(name), value] = pair.as_mut_slice()
            && is_secret(name)
        {
            each(name, value);
        }
    }
}

/// Whether a field named `name` lists cookies (`"cookies": [{"name": "sid", "value": …}]`, as a
/// HAR does): every value in it is one.
pub(crate) fn is_cookie_list(name: &str) -> bool {
    matches!(compact(name).as_str(), "cookie" | "cookies" | "setcookie" | "setcookies")
}

/// Whether a request field, or a pair's name, is a credential's: [`is_credential_name`], or a
/// cookie header's name written as a field (`"headers": {"Cookie": …}`).
pub(crate) fn names_request_credential(name: &str) -> bool {
    is_credential_name(name) || is_cookie_list(name)
}

fn mask_json_into(value: &mut Value, found: &mut Vec<Found>) {
    match value {
        Value::Object(map) => {
            if opaque_blob(map)
                && let Some(blob) = map.get_mut("blob")
            {
                mask_scalar("blob", blob, found);
            }
            let patched = patched_credential(map);
            if let Some((name, field)) = secret_pair(map, &names_request_credential)
                && let Some(value) = map.get_mut(field)
            {
                mask_all(&name, value, found);
            }
            for (name, item) in map.iter_mut() {
                for_untyped_blobs(name, item, |blob| mask_scalar("blob", blob, found));
                if is_cookie_list(name) && !item.is_number() {
                    mask_credential(name, item, found);
                }
                if let Some(credential) = patched.as_deref().filter(|_| name == "value") {
                    mask_all(credential, item, found);
                    continue;
                }
                if is_container(name) {
                    mask_all(name, item, found);
                    continue;
                }
                if is_credential_name(name) {
                    mask_credential(name, item, found);
                }
                mask_json_into(item, found);
            }
        }
        Value::Array(items) => {
            for_secret_pairs_in_list(items, &names_request_credential, |name, value| {
                mask_credential(name, value, found);
            });
            items.iter_mut().for_each(|i| mask_json_into(i, found));
        }
        // A URL in any field (relative ones too): its `user:password@` and credential
        // parameters, and `;name=value` parameters.
        Value::String(text) => {
            if let Some((masked, values)) = crate::model::urls::mask_text_urls(text) {
                *text = masked;
                found.extend(values);
            } else if let Some((masked, values)) = mask_json_text(text, &mut |json| mask_json(json)) {
                *text = masked;
                found.extend(values);
            } else if text.contains('=')
                && !text.bytes().any(|b| b.is_ascii_whitespace())
                && let Some((masked, values)) = crate::model::assignments::mask_lines(
                    text,
                    &is_credential_name,
                    &|name| format!("credential field {name} of the request body"),
                )
            {
                // An assignment making up the string (a container's `"Env": ["DB_PASSWORD=…"]`).
                *text = masked;
                found.extend(values);
            } else if let Some((masked, values)) =
                crate::model::base64_text::mask_base64_text(text, &crate::model::base64_text::mask_request_text)
            {
                // Text sent as base64 (an instance's `user_data` script setting a password).
                *text = masked;
                found.extend(values);
            }
        }
        _ => {}
    }
}

/// A string holding a JSON document (`"data": "{\"password\": …}"`, as some APIs nest a
/// document in a field) with `mask` applied to that document, written back compactly; `None`
/// when it holds none or nothing was masked.
pub(crate) fn mask_json_text(
    text: &str,
    mask: &mut dyn FnMut(&mut Value) -> Vec<Found>,
) -> Option<(String, Vec<Found>)> {
    if !text.trim_start().starts_with(['{', '[']) {
        return None;
    }
    let mut json = serde_json::from_str::<Value>(text).ok()?;
    let found = mask(&mut json);
    (!found.is_empty()).then(|| (json.to_string(), found))
}

/// Masks what a credential-named field holds, whatever its JSON type: a string or number, each
/// element of an array (`"password": ["…"]`), and in an object the secret directly inside it
/// (Keystone's `"token": {"id": …}`, `{"password": {"value": …}}`, IAM's `"secret": {"key":
/// …}`). The rest of an object is its description, which clients read (a token's expiry and
/// service catalog, a CSMS secret's name and state), and is searched by the caller for names
/// of its own.
pub(crate) fn mask_credential(name: &str, item: &mut Value, found: &mut Vec<Found>) {
    match item {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| mask_credential(name, i, found)),
        // A name-and-value pair naming a credential (`"secret": {"key": "password", "Value":
        // …}`): its value, never its name (masking the name first would hide the pair from
        // the caller, and leave the value raw).
        Value::Object(inner) => match secret_pair(inner, &names_request_credential) {
            Some((pair_name, field)) => {
                if let Some(value) = inner.get_mut(field) {
                    mask_all(&pair_name, value, found);
                }
            }
            None => {
                for field in ["id", "key", "value"] {
                    if let Some(value) = inner.get_mut(field).filter(|v| !v.is_object()) {
                        mask_credential(name, value, found);
                    }
                }
            }
        },
        _ => mask_scalar(name, item, found),
    }
}

/// Masks every string and number at any depth of `value`.
pub(crate) fn mask_all(name: &str, value: &mut Value, found: &mut Vec<Found>) {
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| mask_all(name, v, found)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_all(name, v, found)),
        _ => mask_scalar(name, value, found),
    }
}

/// Masks `value` if it is a string or number (an object or array is searched by the caller).
pub(crate) fn mask_scalar(name: &str, value: &mut Value, found: &mut Vec<Found>) {
    let real = match value {
        Value::String(s) if s == PLACEHOLDER => return,
        Value::String(s) => std::mem::take(s),
        Value::Number(n) => n.to_string(),
        _ => return,
    };
    if !real.is_empty() {
        found.push(Found {
            label: format!("credential field {name} of the request body"),
            value: real,
        });
    }
    *value = Value::String(PLACEHOLDER.to_owned());
}

/// JSON pointers and names of the credential fields of `value` not holding [`PLACEHOLDER`].
pub fn unmasked_in_json(value: &Value) -> Vec<(String, String)> {
    let mut copy = value.clone();
    let mut out = Vec::new();
    collect_unmasked(&mut copy, String::new(), &mut out);
    out
}

fn collect_unmasked(value: &mut Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if opaque_blob(map) {
                out.push((format!("{pointer}/blob"), "blob".to_owned()));
            }
            let patched = patched_credential(map);
            for (name, item) in map.iter_mut() {
                let child = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                let mut untyped = false;
                for_untyped_blobs(name, item, |_| untyped = true);
                if untyped {
                    out.push((child.clone(), "blob".to_owned()));
                }
                if let Some(credential) = patched.as_deref().filter(|_| name == "value") {
                    let mut found = Vec::new();
                    mask_all(credential, item, &mut found);
                    if !found.is_empty() {
                        out.push((child.clone(), credential.to_owned()));
                    }
                    continue;
                }
                if is_container(name) {
                    let mut found = Vec::new();
                    mask_all(name, item, &mut found);
                    if !found.is_empty() {
                        out.push((child.clone(), name.clone()));
                    }
                    continue;
                }
                if is_credential_name(name) {
                    let mut found = Vec::new();
                    mask_credential(name, item, &mut found);
                    if !found.is_empty() {
                        out.push((child.clone(), name.clone()));
                    }
                }
                collect_unmasked(item, child, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                collect_unmasked(item, format!("{pointer}/{i}"), out);
            }
        }
        Value::String(text) => {
            let holds = if crate::model::urls::mask_text_urls(text).is_some() {
                "a URL with credentials"
            } else if mask_json_text(text, &mut |json| mask_json(json)).is_some() {
                "a JSON document with credentials"
            } else if crate::model::base64_text::mask_base64_text(text, &crate::model::base64_text::mask_request_text).is_some() {
                "base64 text with credentials"
            } else {
                return;
            };
            let name = pointer.rsplit('/').next().unwrap_or_default().to_owned();
            out.push((pointer, format!("{name} ({holds})")));
        }
        _ => {}
    }
}

/// The credentials of a live request's body, read as its `Content-Type` says (see
/// [`mask_body`]); empty when it holds none.
pub fn body_credentials(headers: &hyper::HeaderMap, body: &[u8]) -> Vec<Found> {
    let content_type = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    mask_body(body, content_type).map_or_else(Vec::new, |(_, found)| found)
}

/// A request body with its credentials masked: JSON fields, form parameters when
/// `content_type` says it is a form (or there is none and the body reads as one), the parts
/// of a `multipart/form-data` body (see [`crate::model::multipart`]), or, in other text, the
/// `"name": value` pairs of JSON a parser refuses (see [`crate::model::json_like`]). `None` when
/// there is nothing to mask (or the body is neither, or its credentials are empty). The masked
/// JSON is compact; the form keeps its other pairs as they were.
pub fn mask_body(body: &[u8], content_type: Option<&str>) -> Option<(Vec<u8>, Vec<Found>)> {
    // A body inside a body (a multipart part, an encoded part's content) is read by calling
    // this again: bounded, so a hostile nesting cannot overflow the stack.
    let Some(_nested) = crate::model::nesting::Nesting::enter() else {
        return Some((
            PLACEHOLDER.as_bytes().to_vec(),
            vec![Found {
                label: format!(
                    "a part nested more than {} bodies deep in the request body (masked whole)",
                    crate::model::nesting::MAX_NESTED_BODIES
                ),
                value: String::new(),
            }],
        ));
    };
    // JSON after a UTF-8 byte-order mark is JSON to most servers.
    let json_text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Ok(mut json) = serde_json::from_slice::<Value>(json_text) {
        let found = mask_json(&mut json);
        if found.is_empty() {
            return None;
        }
        return Some((
            serde_json::to_vec(&json).expect("a parsed value serialises"),
            found,
        ));
    }
    // Multipart by its type, or by its bytes when the type does not say so or names no
    // boundary the body holds (see `multipart::body_boundary`).
    if let Some(boundary) = crate::model::multipart::body_boundary(content_type, body) {
        return crate::model::multipart::mask(body, boundary);
    }
    let plain = content_type.is_none_or(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/plain"))
    });
    // A byte-order mark before a form is kept, and the form read after it.
    let (mark, form) = match body.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => ("\u{feff}", rest),
        None => ("", body),
    };
    if is_form(content_type) || (plain && looks_like_form_lines(form)) {
        let text = std::str::from_utf8(form).ok()?;
        let (mut text, mut found) = match mask_form_lines(text) {
            Some((masked, found)) => (masked, found),
            None => (text.to_owned(), Vec::new()),
        };
        // A field holding JSON (`payload={"access_token": …}`): its credential pairs too.
        if let Some((masked, in_values)) = crate::model::forms::mask_json_in_form_lines(&text, "the request body") {
            text = masked;
            found.extend(in_values);
        }
        if found.is_empty() {
            return None;
        }
        let masked = format!("{mark}{text}");
        let found = found
            .into_iter()
            .map(|f| Found {
                label: f.label.replace(
                    "credential query parameter",
                    "credential form field of the request body",
                ),
                value: f.value,
            })
            .collect();
        return Some((masked.into_bytes(), found));
    }
    let text = std::str::from_utf8(body).ok()?;
    // XML: credential elements and attributes (see [`crate::model::xml_like`]).
    if crate::model::xml_like::looks_like_xml(text) {
        return crate::model::xml_like::mask_elements(text, &is_credential_name, &|name| {
            format!("credential element {name} of the request body")
        })
        .map(|(masked, found)| (masked.into_bytes(), found));
    }
    // Assignments a line (an env, properties or INI file: a form but for its comments, sections,
    // spaces or `export`s), then JSON a strict parser refuses (`NaN`, several documents,
    // trailing text, single quotes, cut short, nested past the parser's limit).
    let label = |name: &str| format!("credential field {name} of the request body");
    crate::model::assignments::mask_lines_then(text, &is_credential_name, &label, |text| {
        crate::model::json_like::mask_fields(text, &|name, _| is_credential_name(name), &label)
    })
    .map(|(masked, found)| (masked.into_bytes(), found))
}

/// An origin or URL (`scheme://...`) with its user information (`user:password@`) removed, and
/// that user information when there was some. Text without `://` is no URL and is returned as is.
pub fn strip_userinfo(url: &str) -> (String, Option<String>) {
    match userinfo_of(url) {
        Some((stripped, userinfo)) => (stripped, Some(userinfo)),
        None => (url.to_owned(), None),
    }
}

/// A URL's user information, as [`strip_userinfo`] finds it, with the URL without it; `None`
/// (and nothing allocated) when it has none. Every recording asks this of its upstream's
/// origin, which almost never has an `@`, and user information ends at one.
pub fn userinfo_of(url: &str) -> Option<(String, String)> {
    memchr::memchr(b'@', url.as_bytes())?;
    let (scheme, rest) = url.split_once("://")?;
    let at = userinfo_end(rest)?;
    Some((format!("{scheme}://{}", &rest[at + 1..]), rest[..at].to_owned()))
}

/// Where the user information of a URL ends: the `@` after it in `rest` (the URL after its
/// `scheme://`), or `None` when it has none.
///
/// By the URL rules the authority ends at the first `/`, `?` or `#`; but a password is often
/// typed with those unencoded (storage keys are: Glance's `s3://AK:SECRET/x@host/…`
/// locations), and then those rules would show the rest of it as a path. So, where what the
/// URL rules read as the host is no host with a port (`john.doe:pa` in `john.doe:pa/ss@h`), or
/// where what follows an `@` does not look like a host (no `.`, no port, not `localhost` or an
/// IP literal: `p` in `user:p@ss/word@h`):
/// - an `@` in the path (before any `?` or `#`) ends the user information;
/// - else, when the authority has a `:` followed by no port (`user:se?cret@host`,
///   `acct:user:se#cret@host`) or an `@` (`user:p@ss?word@host`), the first `@` after it does.
///
/// `keystone:5000/v3/users?name=alice@example.com` and `obs.example.com:443/b/logo@2x.png` have
/// none. The price: a single-label host with a port and an `@` in its path (`https://h:8443/u/a@b`)
/// is masked as if its user information went on to that `@`: kept with less, never more.
pub(crate) fn userinfo_end(rest: &str) -> Option<usize> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let path_end = (rest[authority_end..].find(['?', '#'])).map_or(rest.len(), |at| authority_end + at);
    let in_path = || rest[authority_end..path_end].rfind('@').map(|at| authority_end + at);
    let after = || rest[authority_end..].find('@').map(|at| authority_end + at);
    if let Some(at) = authority.rfind('@') {
        return match looks_like_host(&authority[at + 1..], true) {
            true => Some(at),
            false => in_path().or_else(after).or(Some(at)),
        };
    }
    if !has_colon(authority) {
        return None;
    }
    // `host:port`: a single label and a port could be a user and a password of digits, so
    // only a host that looks like one (a dot) with a port settles it. A `:` followed by no
    // port is a password's (`john.doe:pa/ss@host`), whatever the user name looks like.
    let port = authority.rsplit(':').next().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if port && looks_like_host(authority, false) {
        return None;
    }
    in_path().or_else(|| if port { None } else { after() })
}

/// Whether an authority's host part (`host[:port]`) looks like a host rather than a user name
/// or part of a password: a dot (`obs.example.com`, `10.0.0.1`), an IP literal, `localhost`, or,
/// when `port_counts`, a port (`h:8080` in `user:key@h:8080`).
fn looks_like_host(text: &str, port_counts: bool) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !text.starts_with('[') || host.ends_with(']') => (host, Some(port)),
        _ => (text, None),
    };
    let has_port = port.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host.contains('.')
        || host.starts_with('[')
        || host.eq_ignore_ascii_case("localhost")
        || port_counts && has_port && !host.contains(':')
}

/// Whether `authority` has a `:` outside an IPv6 address's brackets (`[::1]:8443` has one, its
/// port's): a port, or a password.
fn has_colon(authority: &str) -> bool {
    let after_address = match authority.rfind(']') {
        Some(end) if authority.starts_with('[') => &authority[end..],
        _ => authority,
    };
    after_address.contains(':')
}

/// A URL, or an origin-form target (`/path?query`), as messages and logs may show it: its
/// user information, if any, replaced by [`PLACEHOLDER`] (`https://REDACTED@host`), and the
/// values of its credential matrix and query parameters masked (`;token=REDACTED`,
/// `?token=REDACTED`). Used wherever ims-vcr names a URL it was given or sends to.
pub fn shown_url(url: &str) -> String {
    let url = match strip_userinfo(url) {
        (stripped, Some(_)) => stripped.replacen("://", &format!("://{PLACEHOLDER}@"), 1),
        // `user:password@host` without a scheme (refused for that, and shown in the refusal).
        (url, None) if !url.contains("://") => {
            let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
            match url[..authority_end].rfind('@') {
                Some(at) => format!("{PLACEHOLDER}{}", &url[at..]),
                None => url,
            }
        }
        (url, None) => url,
    };
    let (base, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let (path, query) = match base.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (base, None),
    };
    let mut shown = shown_path(path).into_owned();
    if let Some(query) = query {
        shown.push('?');
        match mask_query(query) {
            Some((masked, _)) => shown.push_str(&masked),
            None => shown.push_str(query),
        }
    }
    // A fragment is read like a query: OAuth's implicit grant hands out `#access_token=…`.
    if let Some(fragment) = fragment.strip_prefix('#') {
        shown.push('#');
        match mask_query(fragment) {
            Some((masked, _)) => shown.push_str(&masked),
            None => shown.push_str(fragment),
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_a_form_field_keeps_its_spacing_unless_a_whole_document_read_finds_more() {
        let form = |body: &str| {
            let (masked, found) = mask_body(body.as_bytes(), Some("application/x-www-form-urlencoded")).unwrap();
            (String::from_utf8(masked).unwrap(), found.into_iter().map(|f| f.value).collect::<Vec<_>>())
        };
        // As every ims-vcr since JSON in form fields was read stored it: the request key stays.
        let (masked, found) = form("payload=%7B%22access_token%22%3A+%22s-1%22%2C+%22b%22%3A+1%7D&x=1");
        assert_eq!(masked, "payload=%7B%22access_token%22%3A+%22REDACTED%22%2C+%22b%22%3A+1%7D&x=1");
        assert_eq!(found, ["s-1"]);
        assert_eq!(mask_body(masked.as_bytes(), Some("application/x-www-form-urlencoded")), None);
        // An array's elements, which the pairs alone miss: the document written compactly.
        let (masked, found) = form("p=%7B%22password%22%3A+%5B%22a1a1a1%22%2C+%22b2b2b2%22%5D%7D");
        assert!(!masked.contains("a1a1a1") && !masked.contains("b2b2b2"), "{masked}");
        assert!(found.contains(&"b2b2b2".to_owned()), "{found:?}");
    }

    #[test]
    fn credential_names_are_recognised_in_any_case_and_spelling() {
        for name in [
            "JSESSIONID",
            "sessionId",
            "PHPSESSID",
            "sessionKey",
            "credentials",
            "X-Auth-Token",
            "x_auth_token",
            "access_token",
            "TOKEN",
            "password",
            "new_password",
            "adminPassword",
            "passwd",
            "secret",
            "client_secret",
            "Signature",
            "X-Amz-Signature",
            "sig",
            "sign",
            "hmac",
            "api_key",
            "x-api-key",
            "APIKEY",
            "X-Amz-Credential",
            "AWSAccessKeyId",
            // Huawei's AK/SK as parameters, Nova's server password, other token spellings.
            "ak",
            "SK",
            "adminPass",
            "Authorization",
            "X-Service-Token",
            "x_access_token",
            "Private-Token",
            "private_key",
            "ssh_private_key",
            "passphrase",
            "token[]",
            // Every spelling of a name: without separators, camelCase, PascalCase.
            "SecurityToken",
            "securitytoken",
            "x-obs-security-token",
            "sessionToken",
            "X-Auth-Key",
            "privateKey",
            "pass",
            "temp_url_sig",
            "csrf_token",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "nextToken",
            "ContinuationToken",
            "next_page_token",
            "page_token",
            "next_token",
            "marker",
            "limit",
            "owner",
            "name",
            "sort_key",
            "signed",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    #[test]
    fn pwd_and_pass_endings_key_material_app_codes_and_grants_are_credentials() {
        for name in [
            // `*_pwd` and a word `pass` at the end, as `admin_pass` already was.
            "root_pwd",
            "adminPwd",
            "user_pwd",
            "X-Storage-Pass",
            "db_pass",
            "db_pass2",
            // API gateways' app codes and app keys.
            "X-Apig-AppCode",
            "app_code",
            "X-HW-APPKEY",
            "appKey",
            // Key material, Swift's temp-URL keys with a numeric suffix.
            "signing_key",
            "encryption_key",
            "master_key",
            "hmac_key",
            "temp_url_key",
            "X-Container-Meta-Temp-Url-Key-2",
            "token2",
            // Session ids and grants.
            "session_id",
            "x_session_id",
            "SAMLResponse",
            "assertion",
            "client_assertion",
            "code_verifier",
            "password_hash",
            // Assertions, JWTs and short spellings of a password.
            "X-JWT-Assertion",
            "Cf-Access-Jwt-Assertion",
            "saml_assertion",
            "jwt",
            "id_jwt",
            "pw",
            "DPoP",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for data in [
            "bypass",
            "compass",
            "Overpass",
            "client_assertion_type",
            "signing_key_type",
            "temp_url_key_type",
            "code",
            "error_code",
            "sort_key",
            "key2",
            "page2",
            "app_id",
        ] {
            assert!(!is_credential_name(data), "{data}");
        }
    }

    #[test]
    fn a_bracketed_name_is_judged_whole_and_by_its_last_segment() {
        for name in [
            "auth[token]",
            "data[access_token]",
            "user[api_token]",
            "auth[password]",
            "a[b][token][]",
            "page[token]",
            "credentials[secret]",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for data in ["token[expires_at]", "filter[name]", "page[size]", "data[]", "x[]y"] {
            assert!(!is_credential_name(data), "{data}");
        }
        let (masked, found) = mask_query(
            "auth%5Btoken%5D=q-1&data%5Baccess_token%5D=q-2&user[api_token]=q-3&filter%5Bname%5D=n",
        )
        .unwrap();
        assert_eq!(
            masked,
            "auth%5Btoken%5D=REDACTED&data%5Baccess_token%5D=REDACTED&user[api_token]=REDACTED&filter%5Bname%5D=n"
        );
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["q-1", "q-2", "q-3"]);
        let form = b"auth%5Btoken%5D=f-1&user%5Bapi_token%5D=f-2&name=x";
        let (masked, _) = mask_body(form, Some("application/x-www-form-urlencoded")).unwrap();
        assert_eq!(masked, b"auth%5Btoken%5D=REDACTED&user%5Bapi_token%5D=REDACTED&name=x");
    }

    #[test]
    fn an_authorization_code_is_masked_only_beside_a_grant_type_or_redirect_uri() {
        let form = "grant_type=authorization_code&code=c-1&redirect_uri=https%3A%2F%2Fapp%2Fcb";
        let (masked, found) = mask_query(form).unwrap();
        assert_eq!(
            masked,
            "grant_type=authorization_code&code=REDACTED&redirect_uri=https%3A%2F%2Fapp%2Fcb"
        );
        assert_eq!(found[0].value, "c-1");
        let (masked, _) = mask_query("Code=c-2&Redirect-Uri=x").unwrap();
        assert_eq!(masked, "Code=REDACTED&Redirect-Uri=x");
        let (masked, _) = mask_query("assertion=a.b.c&SAMLResponse=PHNhbWw%3D&RelayState=r").unwrap();
        assert_eq!(masked, "assertion=REDACTED&SAMLResponse=REDACTED&RelayState=r");
        // Without a grant, `code` is data: an error code filtered on, a region code.
        assert_eq!(mask_query("code=IMS.0001&limit=1"), None);
        let body = br#"{"error":{"code":"IMS.0001","message":"m"}}"#;
        assert!(mask_body(body, Some("application/json")).is_none());
        assert!(mask_body(b"code=IMS.0001&region=r", Some("application/x-www-form-urlencoded")).is_none());
    }

    #[test]
    fn a_keystone_credential_blob_is_masked_whole_but_an_ec2_blob_keeps_its_access_key_id() {
        let totp = br#"{"credential":{"blob":"GEZDGNBVGY3TQOJQ","type":"totp","user_id":"u1"}}"#;
        let (masked, found) = mask_body(totp, Some("application/json")).unwrap();
        let masked: Value = serde_json::from_slice(&masked).unwrap();
        assert_eq!(masked["credential"]["blob"], PLACEHOLDER);
        assert_eq!(masked["credential"]["type"], "totp");
        assert_eq!(found[0].value, "GEZDGNBVGY3TQOJQ");
        let ec2 = br#"{"credential":{"blob":"{\"access\":\"AK1\",\"secret\":\"S1\"}","type":"ec2"}}"#;
        let (masked, found) = mask_body(ec2, Some("application/json")).unwrap();
        let text = String::from_utf8(masked).unwrap();
        assert!(text.contains("AK1") && !text.contains("S1"), "{text}");
        assert_eq!(found.len(), 1);
        // Without a `type` (Keystone's PATCH sends only what changes), a credential's blob is
        // masked whole; a `blob` elsewhere is data.
        let patch = br#"{"credential":{"blob":"PATCHEDSEED77"}}"#;
        let (masked, found) = mask_body(patch, Some("application/json")).unwrap();
        assert_eq!(masked, br#"{"credential":{"blob":"REDACTED"}}"#);
        assert_eq!(found[0].value, "PATCHEDSEED77");
        let cassette: Value = serde_json::from_slice(patch).unwrap();
        assert_eq!(unmasked_in_json(&cassette).len(), 1);
        assert!(mask_body(br#"{"blob":"abc","size":3}"#, Some("application/json")).is_none());
    }

    #[test]
    fn key_and_auth_are_credentials_as_parameters_but_data_as_json_fields() {
        let (masked, found) = mask_query("key=AIzaSy-k1&auth=Bearer%20t1&jwt=a.b.c&pw=p1&limit=2").unwrap();
        assert_eq!(masked, "key=REDACTED&auth=REDACTED&jwt=REDACTED&pw=REDACTED&limit=2");
        assert_eq!(found.len(), 4);
        let form = b"pw=p2&KEY=k2&name=n";
        let (masked, _) = mask_body(form, Some("application/x-www-form-urlencoded")).unwrap();
        assert_eq!(masked, b"pw=REDACTED&KEY=REDACTED&name=n");
        // IMS tags and Keystone's sign-in keep their `key` and `auth` fields.
        let tags = br#"{"tags":[{"key":"env","value":"ci"}]}"#;
        assert!(mask_body(tags, Some("application/json")).is_none());
        assert_eq!(mask_query("sort_key=name&monkey=1"), None);
    }

    #[test]
    fn a_query_keeps_its_other_pairs_byte_for_byte() {
        let (masked, found) =
            mask_query("limit=1&access%5Ftoken=a%2Bb&name=x+y&Sig=&owner=o").unwrap();
        assert_eq!(
            masked,
            "limit=1&access%5Ftoken=REDACTED&name=x+y&Sig=REDACTED&owner=o"
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].value, "a+b");
        assert_eq!(mask_query("limit=1&marker=m"), None);
        assert_eq!(mask_query("token=REDACTED"), None);
    }



    #[test]
    fn json_after_a_byte_order_mark_and_plain_text_forms_are_masked() {
        let (masked, found) = mask_body(b"\xEF\xBB\xBF{\"password\":\"p-1\"}", None).unwrap();
        assert_eq!(masked, br#"{"password":"REDACTED"}"#);
        assert_eq!(found[0].value, "p-1");
        let form = b"a=1&payload=%7B%22access_token%22%3A%22t-form%22%2C%22n%22%3A1%7D&b=2";
        let (masked, found) = mask_body(form, Some("application/x-www-form-urlencoded")).unwrap();
        let masked = String::from_utf8(masked).unwrap();
        assert!(!masked.contains("t-form") && masked.starts_with("a=1&payload=") && masked.ends_with("&b=2"), "{masked}");
        assert_eq!(found[0].value, "t-form");
        assert!(mask_body(masked.as_bytes(), Some("application/x-www-form-urlencoded")).is_none());
        let (masked, _) = mask_body(b"user=u&password=p-2", Some("text/plain")).unwrap();
        assert_eq!(masked, b"user=u&password=REDACTED");
        let (masked, _) = mask_body(b"\xEF\xBB\xBFpassword=p-3", Some("text/plain")).unwrap();
        assert_eq!(masked, b"\xEF\xBB\xBFpassword=REDACTED");
        assert!(mask_body(b"user=u&password=p-2", Some("text/csv")).is_none());
    }

    #[test]
    fn a_multipart_body_has_its_credential_parts_masked() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw-1\r\n--b--\r\n";
        let (masked, found) = mask_body(body, Some("multipart/form-data; boundary=b")).unwrap();
        assert!(String::from_utf8(masked).unwrap().contains("\r\n\r\nREDACTED\r\n--b--"));
        assert_eq!(found[0].value, "pw-1");
        // Another type, or none: the body is read as parts all the same, by its first line and
        // its first part's `Content-Disposition` (see `multipart::sniffed_boundary`).
        assert_eq!(mask_body(body, Some("text/plain")).unwrap().1[0].value, "pw-1");
        assert_eq!(mask_body(body, None).unwrap().1[0].value, "pw-1");
        // A multipart type set by hand without its boundary, or with one the body does not
        // hold, and a form's bytes under another type: read by the bytes too.
        for declared in [
            "multipart/form-data",
            "multipart/mixed; boundary=other",
            "application/json",
            "application/x-www-form-urlencoded",
        ] {
            let found = mask_body(body, Some(declared)).map(|(_, found)| found);
            assert_eq!(found.as_ref().map(|f| f[0].value.as_str()), Some("pw-1"), "{declared}");
        }
    }

    #[test]
    fn a_credential_field_holding_an_array_or_object_is_masked_but_its_description_kept() {
        let mut body = serde_json::json!({
            "password": ["p-1", "p-2", 3],
            "client_secret": [["c-1"]],
            "access_token": [{"value": "a-1", "v": "kept-v"}],
            "refresh_token": {"value": "r-1", "expires_at": "2027-01-01T00:00:00Z"},
            "secret": {"key": "s-1", "name": "my-db-secret", "state": "ENABLED", "size": 3},
            "token": {"id": "t-1", "expires_at": "2027-01-01T00:00:00Z", "methods": ["password"],
                      "catalog": [{"endpoints": [{"url": "https://ims.example"}]}]},
        });
        let found = mask_json(&mut body);
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort();
        assert_eq!(values, ["3", "a-1", "c-1", "p-1", "p-2", "r-1", "s-1", "t-1"]);
        let text = body.to_string();
        for kept in ["kept-v", "my-db-secret", "ENABLED", "2027-01-01T00:00:00Z", "\"password\"]", "https://ims.example"] {
            assert!(text.contains(kept), "{kept}: {text}");
        }
        assert_eq!(body["secret"]["size"], 3);
        assert!(unmasked_in_json(&body).is_empty());
    }

    #[test]
    fn urls_in_request_json_strings_have_their_credentials_masked() {
        let mut body = serde_json::json!({
            "url": "https://u:p-1@h/x",
            "links": ["https://h/x?token=t-1&a=1", "https://h/plain"],
            "next": "/x?token=t-2",
            "page": "x?marker=m&limit=1",
        });
        assert_eq!(unmasked_in_json(&body).len(), 3);
        let found = mask_json(&mut body);
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["p-1", "t-1", "t-2"]);
        assert_eq!(body["next"], "/x?token=REDACTED");
        assert_eq!(body["page"], "x?marker=m&limit=1");
        assert_eq!(body["url"], "https://u:REDACTED@h/x");
        assert_eq!(body["links"][0], "https://h/x?token=REDACTED&a=1");
        assert!(unmasked_in_json(&body).is_empty());
        // A JSON document nested in a string.
        let mut body = serde_json::json!({"data": "{\"password\": \"p-9\", \"n\": 1}", "t": "{x"});
        assert_eq!(unmasked_in_json(&body).len(), 1);
        assert_eq!(mask_json(&mut body)[0].value, "p-9");
        assert_eq!(body["data"], r#"{"password":"REDACTED","n":1}"#);
        assert_eq!(body["t"], "{x");
    }

    #[test]
    fn names_of_data_about_a_credential_are_not_credentials() {
        for data in [
            "password_expires_at",
            "img_signature",
            "img_signature_key_type",
            "img_signature_hash_method",
            "img_signature_certificate_uuid",
            "signature_version",
            "SignatureVersion",
            "password_policy",
            "oauth_signature_method",
        ] {
            assert!(!is_credential_name(data), "{data}");
        }
        for secret in ["password", "signature", "X-Amz-Signature", "client_secret", "secret_key", "Signature"] {
            assert!(is_credential_name(secret), "{secret}");
        }
        // Glance's signed-image upload: its properties are data, stored and matched as sent.
        let body = br#"{"name":"signed","img_signature":"c2ln","img_signature_key_type":"RSA-PSS"}"#;
        assert!(mask_body(body, Some("application/json")).is_none());
        // Free text with `name=value` lists is data.
        let mut text = serde_json::json!({"description": "a=1, token=placeholder"});
        assert!(mask_json(&mut text).is_empty());
    }

    #[test]
    fn json_bodies_have_credential_fields_masked_at_any_depth() {
        let mut body = serde_json::json!({
            "auth": {"identity": {
                "methods": ["password", "token"],
                "password": {"user": {"name": "u", "password": "pw-1", "domain": {"name": "d"}}},
                "token": {"id": "tok-2"},
            }},
            "items": [{"client_secret": 12345}],
            "name": "image",
        });
        let found = mask_json(&mut body);
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["pw-1", "tok-2", "12345"]);
        assert_eq!(body["auth"]["identity"]["password"]["user"]["name"], "u");
        assert_eq!(body["auth"]["identity"]["token"]["id"], PLACEHOLDER);
        assert_eq!(body["items"][0]["client_secret"], PLACEHOLDER);
        assert_eq!(body["name"], "image");
        assert_eq!(mask_json(&mut body), vec![], "masking twice finds nothing");
        assert_eq!(unmasked_in_json(&body), vec![]);
    }

    #[test]
    fn every_identity_sign_in_secret_is_masked() {
        let mut body = serde_json::json!({"auth": {"identity": {
            "methods": ["password", "token", "application_credential", "totp", "hw_ak_sk"],
            "password": {"user": {"name": "u", "password": "pw-1", "domain": {"name": "d"}}},
            "token": {"id": "tok-2"},
            "application_credential": {"id": "app-id", "secret": "app-secret-3"},
            "totp": {"user": {"id": "uid", "passcode": "123456"}},
            "hw_ak_sk": {"access": {"key": "AK-4"}, "secret": {"key": "SK-5"}},
        }, "scope": {"project": {"id": "p"}}}});
        let found = mask_json(&mut body);
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        for secret in ["pw-1", "tok-2", "app-secret-3", "123456", "AK-4", "SK-5"] {
            assert!(values.contains(&secret), "{secret} not found: {values:?}");
            assert!(!body.to_string().contains(secret), "{secret} left in {body}");
        }
        let identity = &body["auth"]["identity"];
        assert_eq!(identity["totp"]["user"]["passcode"], PLACEHOLDER);
        assert_eq!(identity["hw_ak_sk"]["secret"]["key"], PLACEHOLDER);
        assert_eq!(identity["hw_ak_sk"]["access"]["key"], PLACEHOLDER);
        assert_eq!(identity["application_credential"]["id"], "app-id");
        assert_eq!(body["auth"]["scope"]["project"]["id"], "p");
        assert_eq!(unmasked_in_json(&body), vec![]);
        assert_eq!(mask_json(&mut body), vec![], "idempotent");
    }

    #[test]
    fn a_json_patch_setting_a_credential_has_its_value_masked() {
        use serde_json::json;
        // Glance's and Nova's updates are JSON-Patch: the credential is named by `path`.
        let mut body = json!([
            {"op": "replace", "path": "/password", "value": "pp-1"},
            {"op": "add", "path": "/metadata/db_password", "value": {"nested": "pp-2"}},
            {"op": "replace", "path": "/name", "value": "kept"},
            {"path": "/password", "value": "not-a-patch-op"},
        ]);
        assert_eq!(
            unmasked_in_json(&body),
            [
                ("/0/value".to_owned(), "password".to_owned()),
                ("/1/value".to_owned(), "db_password".to_owned()),
            ]
        );
        let found = mask_json(&mut body);
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["pp-1", "pp-2"]);
        assert_eq!(body[0]["value"], PLACEHOLDER);
        assert_eq!(body[1]["value"]["nested"], PLACEHOLDER);
        assert_eq!(body[2]["value"], "kept");
        assert_eq!(body[3]["value"], "not-a-patch-op");
        assert!(unmasked_in_json(&body).is_empty());
    }

    #[test]
    fn base64_text_holding_credentials_is_masked_and_named_by_what_it_holds() {
        use base64::Engine as _;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let mut body = serde_json::json!({
            "user_data": b64("#!/bin/sh\nexport OS_PASSWORD=ud-1\necho kept\n"),
            "doc": r#"{"password": "doc-2"}"#,
            "plain": b64("nothing secret in this text at all"),
        });
        assert_eq!(
            unmasked_in_json(&body),
            [
                ("/user_data".to_owned(), "user_data (base64 text with credentials)".to_owned()),
                ("/doc".to_owned(), "doc (a JSON document with credentials)".to_owned()),
            ]
        );
        let found = mask_json(&mut body);
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["ud-1", "doc-2"]);
        assert_eq!(body["user_data"], b64("#!/bin/sh\nexport OS_PASSWORD=REDACTED\necho kept\n"));
        assert!(unmasked_in_json(&body).is_empty());
    }

    #[test]
    fn pairs_header_lists_and_cookies_in_a_request_body_are_masked() {
        let mut body = serde_json::json!({
            "metadata": [{"key": "password", "value": "p-1"}, {"key": "os_type", "value": "Linux"}],
            "headers": {"Cookie": "sid=c-2", "Accept": "*/*"},
            "pairs": [["Authorization", "Bearer a-3"], ["Accept", "*/*"]],
            "cookies": [{"name": "sid", "value": "c-4"}],
            "Env": ["DB_PASSWORD=e-5", "HOME=/root"],
        });
        let found = mask_json(&mut body);
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["Bearer a-3", "c-4", "e-5", "p-1", "sid=c-2"], "{body}");
        assert_eq!(body["Env"], serde_json::json!(["DB_PASSWORD=REDACTED", "HOME=/root"]));
        assert_eq!(body["metadata"][1]["value"], "Linux");
        assert_eq!(body["headers"]["Accept"], "*/*");
        assert_eq!(body["pairs"][1][1], "*/*");
    }

    #[test]
    fn a_form_sent_without_a_content_type_has_its_credentials_masked() {
        let (masked, found) = mask_body(b"user=u&password=pw-7&x=1", None).unwrap();
        assert_eq!(masked, b"user=u&password=REDACTED&x=1");
        assert_eq!(found[0].value, "pw-7");
        // A form a line (an env file) too, its line endings kept.
        let (masked, _) = mask_body(b"a=1\npassword=pw\n", None).unwrap();
        assert_eq!(masked, b"a=1\npassword=REDACTED\n");
        // Text that is no form is left alone, but for its assignment lines (an env or INI
        // file, whatever its type says).
        for (body, content_type) in [
            (&b"password is pw"[..], None),
            (b"a=1\npassword is pw", None),
            (b"=x&password=pw", None),
        ] {
            assert!(mask_body(body, content_type).is_none(), "{body:?}");
        }
        let (masked, _) = mask_body(b"[db]\npassword = pw\n", Some("text/csv")).unwrap();
        assert_eq!(masked, b"[db]\npassword = REDACTED\n");
    }

    #[test]
    fn user_information_is_masked_in_a_url_shown_in_a_message() {
        assert_eq!(
            shown_url("http://alice:pw@127.0.0.1:8080"),
            "http://REDACTED@127.0.0.1:8080"
        );
        assert_eq!(shown_url("https://ims.example"), "https://ims.example");
        assert_eq!(
            shown_url("https://a:b@ims.example/?token=t&limit=1"),
            "https://REDACTED@ims.example/?token=REDACTED&limit=1"
        );
        assert_eq!(
            shown_url("/v2/images;token=t?sk=s#f"),
            "/v2/images;token=REDACTED?sk=REDACTED#f"
        );
    }

    #[test]
    fn user_information_is_stripped_from_an_origin() {
        assert_eq!(
            strip_userinfo("https://alice:pw@ims.example:8443"),
            (
                "https://ims.example:8443".to_owned(),
                Some("alice:pw".to_owned())
            )
        );
        for plain in ["https://ims.example/a@b", "https://[::1]/a@b", "@", "a@b", ""] {
            assert_eq!(strip_userinfo(plain), (plain.to_owned(), None));
        }
        for origin in ["https://ims.example:8443", "https://[::1]:8443", "http://[fe80::1]"] {
            assert_eq!(strip_userinfo(origin), (origin.to_owned(), None));
            assert_eq!(userinfo_of(origin), None);
        }
        // An `@` in the path is no user information: the search for one lets it through.
        assert_eq!(userinfo_of("https://h.example/a@b"), None);
        assert_eq!(
            userinfo_of("https://alice:pw@ims.example:8443"),
            Some(("https://ims.example:8443".to_owned(), "alice:pw".to_owned()))
        );
    }

    #[test]
    fn a_password_typed_with_an_unencoded_slash_question_mark_or_hash_is_never_shown() {
        for typed in [
            "pa/SECRETpw",
            "pa?SECRETpw",
            "pa#SECRETpw",
            "pa/SE@CRET",
            "2024/SECRETpw",
            "/SECRETpw",
            "p@ss/SECRETpw",
        ] {
            let url = format!("https://alice:{typed}@ims.example.com");
            assert_eq!(
                strip_userinfo(&url),
                ("https://ims.example.com".to_owned(), Some(format!("alice:{typed}")))
            );
            assert_eq!(shown_url(&url), "https://REDACTED@ims.example.com", "{url}");
        }
    }

    #[test]
    fn a_name_and_value_pair_under_a_credential_field_has_its_value_masked_not_its_name() {
        for value_field in PAIR_VALUES {
            for outer in ["secret", "credentials", "password"] {
                let body = format!(r#"{{"{outer}": {{"key": "password", "{value_field}": "hunter2-pair"}}}}"#);
                let (masked, found) = mask_body(body.as_bytes(), Some("application/json")).unwrap();
                let masked = String::from_utf8(masked).unwrap();
                assert!(!masked.contains("hunter2-pair"), "{body} -> {masked}");
                assert!(masked.contains(r#""key":"password""#), "the name stays: {masked}");
                assert!(found.iter().any(|f| f.value == "hunter2-pair"), "{body}: {found:?}");
                // In a list of pairs under the name too (`[["secret", {…}]]`).
                let listed = format!(r#"[["{outer}", {{"key": "password", "{value_field}": "hunter2-pair"}}]]"#);
                let (masked, _) = mask_body(listed.as_bytes(), None).unwrap();
                assert!(!String::from_utf8(masked).unwrap().contains("hunter2-pair"), "{listed}");
            }
        }
        // A pair naming no credential under a credential field: its scalar fields, as before.
        let (masked, _) = mask_body(br#"{"secret": {"key": "k-123456", "value": "v-123456"}}"#, None).unwrap();
        let masked = String::from_utf8(masked).unwrap();
        assert!(!masked.contains("k-123456") && !masked.contains("v-123456"), "{masked}");
    }

    /// A multipart body nested thousands of parts deep (each part a multipart body of its own)
    /// is read to a bounded depth on a worker's stack, and what lies past it is masked whole:
    /// no overflow, nothing stored raw, and masking again changes nothing.
    #[test]
    fn a_body_of_parts_nested_past_the_bound_is_masked_whole_without_overflowing_the_stack() {
        let mut body = b"password=deeply-nested-pw".to_vec();
        for level in 0..5000 {
            let b = format!("b{level:06}");
            body = [
                format!("--{b}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n").as_bytes(),
                &body[..],
                format!("\r\n--{b}--\r\n").as_bytes(),
            ]
            .concat();
        }
        // A tokio worker's stack (2 MiB), not the test harness's larger main one.
        let worker = std::thread::Builder::new().stack_size(2 << 20);
        let (masked, again) = worker
            .spawn(move || {
                let (masked, _) = mask_body(&body, None).expect("masked");
                let again = mask_body(&masked, None);
                (masked, again)
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(!contains(&masked, b"deeply-nested-pw"));
        assert!(again.is_none(), "masking again changed it");
        // A part nested within the bound is read as before.
        let nested = b"--outer\r\nContent-Type: multipart/form-data; boundary=inner\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--inner\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nshallow-pw-1\r\n--inner--\r\n\r\n--outer--\r\n";
        let (masked, found) = mask_body(nested, Some("multipart/form-data; boundary=outer")).unwrap();
        assert!(!contains(&masked, b"shallow-pw-1"));
        assert!(found.iter().any(|f| f.value == "shallow-pw-1"), "{found:?}");
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        memchr::memmem::find(haystack, needle).is_some()
    }

    /// Under a form's type, a body of several lines is masked line by line throughout: masking
    /// what was masked changes nothing (its key is the live request's), and no line break is
    /// encoded into a value.
    #[test]
    fn a_form_of_several_lines_is_masked_once_and_for_all() {
        let form = Some("application/x-www-form-urlencoded");
        for body in [
            "password=p1-secret\n\"token\": \"t2-secret\"",
            "password=p1-secret\r\n'hw_ak_sk': \"t2-secret\",",
            "a=1\npayload={\"access_token\": \"t2-secret\"}\nb=2",
            // Not a form at all (`curl -d` sends a form's type by default).
            "{'password': 'p1-secret'}",
            "{\"password\": \"p1-secret\", \"a\": NaN}",
        ] {
            let (once, _) = mask_body(body.as_bytes(), form).expect(body);
            let text = String::from_utf8(once.clone()).unwrap();
            assert!(!text.contains("p1-secret") && !text.contains("t2-secret"), "{body:?} -> {text:?}");
            assert!(!text.contains("%0A"), "a line break went into a value: {text:?}");
            assert_eq!(mask_body(&once, form), None, "{body:?} -> {text:?}");
        }
        // A form's value with a colon in it is a value, not a field.
        assert_eq!(mask_body(b"scope=openid token:read&a=1", form), None);
    }
}
