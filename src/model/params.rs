//! Credentials in parameters: `name=value` pairs of a query, `;name=value` matrix parameters
//! of a path segment (RFC 3986), and the same inside query values and header values. Each is
//! masked by its name ([`crate::model::credentials::is_credential_name`]) and its value replaced
//! with [`PLACEHOLDER`], the rest kept byte for byte.

use percent_encoding::percent_decode_str;

use crate::model::credential_names::is_param_credential_name;
use crate::model::credentials::{Found, PLACEHOLDER};
use crate::model::urls::{mask_text_urls, may_hold_text_urls};

/// Whether a query or matrix parameter's `name` (raw or decoded) is a credential's, however
/// many times it was percent-encoded: `%2574oken` is `token` to whatever decodes it twice, and
/// `verify` and `import` would refuse the cassette holding its value.
fn is_credential_param(name: &str) -> bool {
    // Nothing to decode (the common case): no allocation but `compact`'s.
    if !name.contains(['%', '+']) {
        return is_param_credential_name(name);
    }
    let mut name = decode(name);
    for _ in 0..3 {
        if is_param_credential_name(&name) {
            return true;
        }
        let again = decode(&name);
        if again == name {
            return false;
        }
        name = again;
    }
    is_param_credential_name(&name)
}

/// Whether `bytes` hold, at `i`, the percent-encoding `%` `digit` `letter` (the letter in any
/// case): `%3B` is `;`, `%3D` is `=`.
fn encoded_at(bytes: &[u8], i: usize, digit: u8, letter: u8) -> bool {
    bytes.get(i) == Some(&b'%')
        && bytes.get(i + 1) == Some(&digit)
        && bytes.get(i + 2).is_some_and(|b| b.eq_ignore_ascii_case(&letter))
}

/// How many bytes at `i` spell `%3` `letter` (`%3B` is `;`, `%3D` is `=`, the letter in any
/// case) percent-encoded once or, an escaped `%` before it, up to [`MAX_LEVELS`] times
/// (`%253B`, `%25253B`), as a client escaping an already escaped segment sends it; 0 when none.
fn encoded_len_at(bytes: &[u8], i: usize, letter: u8) -> usize {
    if bytes.get(i) != Some(&b'%') {
        return 0;
    }
    let mut at = i + 1;
    for level in 1..=MAX_LEVELS {
        if bytes.get(at) == Some(&b'3') && bytes.get(at + 1).is_some_and(|b| b.eq_ignore_ascii_case(&letter)) {
            return at + 2 - i;
        }
        let escaped_percent = bytes.get(at..at + 2) == Some(b"25".as_slice());
        if level == MAX_LEVELS || !escaped_percent {
            return 0;
        }
        at += 2;
    }
    0
}

/// How many times a delimiter [`encoded_len_at`] found was percent-encoded (1 for a raw one:
/// its value is then decoded once, as a server reads it).
fn levels_of(delimiter_len: usize) -> usize {
    delimiter_len.saturating_sub(1).div_ceil(2).max(1)
}

/// How many percent-encodings of a `;` or `=` are looked through.
const MAX_LEVELS: usize = 3;

fn decode(part: &str) -> String {
    percent_decode_str(&part.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The query with the value of each credential parameter replaced by [`PLACEHOLDER`], pair by
/// pair (order and the encoding of the other pairs kept), and what was replaced. `None` when
/// there is nothing to replace. A credential hidden as a `;name=value` parameter inside another
/// pair's value (`?a=1;token=...`, which servers that split queries at `;` read as its own
/// parameter) is masked too (see [`mask_params`]), and so are the credentials of a URL in a
/// value (`?redirect=https%3A%2F%2Fh%2Fx%3Ftoken%3D...`).
///
/// This is the one place a query's credentials are found: the stored query is its result, and
/// the request key is made from its result (`key::canonical_query`), so a replay with another
/// token matches, and a query with no credential keys as it always did.
///
/// An OAuth authorization code (`code=`) is a credential only in a query or form that also
/// carries `grant_type` or `redirect_uri` (a token request, `grant_type=authorization_code&
/// code=…`): `code` alone names data too often (`?code=IMS.0001` filtering error codes).
pub fn mask_query(query: &str) -> Option<(String, Vec<Found>)> {
    let by_pairs = mask_query_pairs(query);
    // A value holding JSON (`?filter={"password": …}`, percent-encoded): its credential pairs
    // too, as in a form body's field.
    let text = by_pairs.as_ref().map_or(query, |(masked, _)| masked.as_str());
    match crate::model::forms::mask_json_in_form_values(text, "JSON in the query")
        .filter(|(masked, _)| masked != text)
    {
        Some((masked, in_values)) => {
            let mut found = by_pairs.map(|(_, found)| found).unwrap_or_default();
            found.extend(in_values);
            Some((masked, found))
        }
        None => by_pairs,
    }
}

/// [`mask_query`] but for JSON held in a value (a form's reader masks that itself).
pub(crate) fn mask_query_pairs(query: &str) -> Option<(String, Vec<Found>)> {
    let grant = is_oauth_grant(query);
    let may_hold = |pair: &str| pair_may_hold_credentials(pair) || grant && is_code_pair(pair);
    // Most queries hold no credential: found without building anything.
    if query.is_empty() || !query.split('&').any(may_hold) {
        return None;
    }
    let mut found = Vec::new();
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match may_hold(pair) {
            true => mask_pair(pair, grant && is_code_pair(pair), &mut found),
            false => pair.to_owned(),
        })
        .collect();
    let masked = masked.join("&");
    (masked != query).then_some((masked, found))
}

/// `query` as a request key and a miss report read it: [`mask_query`]'s result, or the query
/// itself when it holds no credential.
pub fn masked_query(query: &str) -> std::borrow::Cow<'_, str> {
    match mask_query(query) {
        Some((masked, _)) => std::borrow::Cow::Owned(masked),
        None => std::borrow::Cow::Borrowed(query),
    }
}

/// Whether a query or form is an OAuth token request or authorization callback: it has a
/// `grant_type` or `redirect_uri` parameter (any spelling, encoded or not).
fn is_oauth_grant(query: &str) -> bool {
    let bytes = query.as_bytes();
    // A cheap first look: most queries name neither.
    let may = |word: &[u8]| bytes.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
    (may(b"grant") || may(b"redirect"))
        && query.split('&').any(|pair| {
            let name = decode(name_and_value(pair).0);
            matches!(
                crate::model::credentials::compact(&name).as_str(),
                "granttype" | "redirecturi"
            )
        })
}

/// Whether a raw query pair is named `code` (any case, encoded or not).
fn is_code_pair(pair: &str) -> bool {
    let name = name_and_value(pair).0;
    name.len() <= 12 && crate::model::credentials::compact(&decode(name)) == "code"
}

/// A raw query pair's name and value: split at its `=`, or, when it has none, at an encoded one
/// (`token%3D…`, which a server decoding before it splits reads as `token=…`).
fn name_and_value(pair: &str) -> (&str, &str) {
    pair.split_once('=')
        .or_else(|| split_at_encoded_equals(pair))
        .unwrap_or((pair, ""))
}

/// A cheap first look at a raw query pair: could [`mask_pair`] change it?
fn pair_may_hold_credentials(pair: &str) -> bool {
    // One pass for what every other check needs (most pairs have none of these).
    if !pair.bytes().any(|b| matches!(b, b';' | b'%' | b'?' | b':')) {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        return is_credential_param(name);
    }
    let (name, value) = name_and_value(pair);
    is_credential_param(name)
        || has_param_delimiter(pair)
        || value.contains("://")
        || value.contains('?')
        || may_be_encoded_url(value)
}

/// Whether a raw value holds an encoded `:`, `/`, `?` or `%` (a URL, or a value encoded
/// twice): only then is it decoded to be looked at, not for every value with a `%`.
fn may_be_encoded_url(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.contains('%')
        && (0..bytes.len()).any(|i| {
            [(b'3', b'a'), (b'2', b'f'), (b'3', b'f'), (b'2', b'5')]
                .iter()
                .any(|(digit, letter)| encoded_at(bytes, i, *digit, *letter))
        })
}

/// One raw query pair with its credentials masked (see [`mask_query`]); `credential` when it
/// is one whatever its name says (a grant's `code`).
fn mask_pair(pair: &str, credential: bool, found: &mut Vec<Found>) -> String {
    let (name, value) = name_and_value(pair);
    if credential || is_credential_param(name) {
        let decoded = decode(value);
        if decoded == PLACEHOLDER {
            return pair.to_owned();
        }
        if !decoded.is_empty() {
            found.push(Found {
                label: format!("credential query parameter {}", decode(name)),
                value: decoded,
            });
        }
        return format!("{name}={PLACEHOLDER}");
    }
    // The whole pair: `a=1;token=...` and `a;sk=...` alike.
    let pair = mask_params(pair, "query parameter", &[], found).unwrap_or_else(|| pair.to_owned());
    // A URL in the value (`?redirect=https%3A%2F%2Fh%2Fx%3Ftoken%3D…`, `?next=%2Fx%3Ftoken%3D…`),
    // however many times it was encoded: masked at the depth it was found, encoded back as often.
    let Some((name, value)) = pair.split_once('=') else {
        return pair;
    };
    let mut current = value.to_owned();
    for depth in 1..=3 {
        let decoded = decode(&current);
        if depth > 1 && decoded == current {
            break;
        }
        // A value is a parameter's, not free text: its `;` parameters count (`1%253Btoken%253D…`).
        if let Some((masked, values)) = mask_header_value(&decoded) {
            let label = format!(
                "credential query parameter {} (a URL with credentials)",
                decode(name)
            );
            found.extend(values.into_iter().map(|f| Found {
                label: label.clone(),
                value: f.value,
            }));
            let mut encoded = masked;
            for _ in 0..depth {
                encoded = form_urlencoded::byte_serialize(encoded.as_bytes()).collect();
            }
            return format!("{name}={encoded}");
        }
        current = decoded;
    }
    pair
}

/// `name` split at its first `%3D` (any case), the encoded `=`.
fn split_at_encoded_equals(name: &str) -> Option<(&str, &str)> {
    let at = (0..name.len()).find(|i| encoded_at(name.as_bytes(), *i, b'3', b'd'))?;
    Some((&name[..at], &name[at + 3..]))
}

/// The path with the value of each credential matrix parameter (`/images/abc;token=...`, the
/// `;name=value` pairs RFC 3986 allows in a segment) replaced by [`PLACEHOLDER`], and what was
/// replaced. `None` when there is nothing to replace (every path without `;` or `%3B`). Such a
/// value would otherwise reach the stored request, an exported cassette's file name and the log.
///
/// A Keystone v2 token named by the path (`/v2.0/tokens/{tokenId}`, what v2 validates, checks
/// and revokes a token with) is masked the same way, under the name `tokenId`.
pub fn mask_path(path: &str) -> Option<(String, Vec<Found>)> {
    let v2 = mask_v2_token(path);
    let path_now = v2.as_ref().map_or(path, |(masked, _)| masked.as_str());
    if !has_param_delimiter(path_now) {
        return v2;
    }
    let mut found = v2.as_ref().map(|(_, found)| found.clone()).unwrap_or_default();
    let masked: Vec<String> = path_now
        .split('/')
        .map(|segment| {
            mask_params(segment, "path parameter", &[], &mut found).unwrap_or_else(|| segment.to_owned())
        })
        .collect();
    let masked = masked.join("/");
    (masked != path).then_some((masked, found))
}

/// The path with the token of a Keystone v2 token path (`…/v2.0/tokens/{tokenId}[/…]`)
/// replaced by [`PLACEHOLDER`]; `None` for any other path (one substring search).
fn mask_v2_token(path: &str) -> Option<(String, Vec<Found>)> {
    const TOKENS: &str = "/v2.0/tokens/";
    // Every request's key asks: most paths have no `.` (`/v2/images/{id}`), found by `memchr`
    // for less than building a substring searcher costs.
    memchr::memchr(b'.', path.as_bytes())?;
    let start = path.find(TOKENS)? + TOKENS.len();
    let end = path[start..].find('/').map_or(path.len(), |at| start + at);
    let token = &path[start..end];
    if token.is_empty() || token == PLACEHOLDER {
        return None;
    }
    let found = Found {
        label: "credential path parameter tokenId".into(),
        value: decode(token),
    };
    Some((format!("{}{PLACEHOLDER}{}", &path[..start], &path[end..]), vec![found]))
}

/// Whether `text` holds `;` or its percent-encoding `%3B` (any case), encoded up to three times
/// (`%253B`).
pub(crate) fn has_param_delimiter(text: &str) -> bool {
    // One pass to the first `;` or `%` (a path has neither, most often; every recording asks
    // this of its path several times); an encoded `;` starts at a `%`, so none before it.
    let bytes = text.as_bytes();
    let Some(first) = memchr::memchr2(b';', b'%', bytes) else {
        return false;
    };
    memchr::memchr(b';', &bytes[first..]).is_some()
        || (first..bytes.len()).any(|i| encoded_len_at(bytes, i, b'b') > 0)
}

/// `text` (a path segment, a query value) with the value of each credential `;name=value`
/// parameter in it replaced by [`PLACEHOLDER`], pushing what was replaced (labelled `credential
/// {kind} NAME`) to `found`; `None` when nothing was replaced. `;` and `=` count percent-encoded
/// too (`%3Btoken%3D...`, as Go's `url.PathEscape` writes them): a server that decodes before it
/// splits reads them as parameters, and either way the value must not reach the disk.
fn mask_params(text: &str, kind: &str, ends: &[char], found: &mut Vec<Found>) -> Option<String> {
    if !has_param_delimiter(text) {
        return None;
    }
    // Byte offsets of each delimiter and its length.
    let bytes = text.as_bytes();
    let delimiter_at = |i: usize, one: u8, encoded: u8| -> usize {
        match bytes[i] {
            b if b == one => 1,
            _ => encoded_len_at(bytes, i, encoded),
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match delimiter_at(i, b';', b'b') {
            0 => i += 1,
            n => {
                pieces.push((start, i));
                pieces.push((i, i + n));
                (start, i) = (i + n, i + n);
            }
        }
    }
    pieces.push((start, bytes.len()));
    // pieces: text, delimiter, parameter, delimiter, parameter, ...
    out.push_str(&text[pieces[0].0..pieces[0].1]);
    for pair in pieces[1..].chunks(2) {
        let (delimiter, (from, to)) = (&text[pair[0].0..pair[0].1], pair[1]);
        out.push_str(delimiter);
        let param = &text[from..to];
        let split = (from..to).find_map(|i| match delimiter_at(i, b'=', b'd') {
            0 => None,
            n => Some((i - from, n)),
        });
        let (name, equals, value) = match split {
            Some((at, n)) => (&param[..at], &param[at..at + n], &param[at + n..]),
            None => (param, "", ""),
        };
        // What follows the value (`ends`), kept as it is.
        let (value, after) = value.split_at(value.find(ends).unwrap_or(value.len()));
        // The value as a server reads it: decoded as often as its delimiters were encoded.
        let levels = levels_of(delimiter.len()).max(levels_of(equals.len()));
        let decoded_name = decode(name);
        let mut decoded = decode(value);
        for _ in 1..levels {
            decoded = decode(&decoded);
        }
        if !is_credential_param(name) || decoded.is_empty() || decoded == PLACEHOLDER {
            out.push_str(param);
            continue;
        }
        found.push(Found {
            label: format!("credential {kind} {decoded_name}"),
            value: decoded,
        });
        out.push_str(name);
        out.push_str(equals);
        out.push_str(PLACEHOLDER);
        out.push_str(after);
        changed = true;
    }
    changed.then_some(out)
}

/// `text` (a header value, say) with the value of every credential `;name=value` parameter in
/// it masked, and what was masked; `None` when nothing was.
fn mask_semicolon_params(text: &str) -> Option<(String, Vec<Found>)> {
    let mut found = Vec::new();
    // A header value goes on after a parameter: a URL's query, a list, a quoted string.
    let ends = ['?', '&', '#', ',', '"', '\'', '<', '>', ' ', '\t'];
    mask_params(text, "parameter", &ends, &mut found).map(|masked| (masked, found))
}

/// `path` as logs and messages may show it: [`mask_path`]'s result, or the path itself.
pub fn shown_path(path: &str) -> std::borrow::Cow<'_, str> {
    match mask_path(path) {
        Some((masked, _)) => std::borrow::Cow::Owned(masked),
        None => std::borrow::Cow::Borrowed(path),
    }
}

/// Names of the credential matrix parameters of `path` whose value is not [`PLACEHOLDER`].
pub fn unmasked_in_path(path: &str) -> Vec<String> {
    mask_path(path)
        .map(|(_, found)| {
            found
                .into_iter()
                .map(|f| f.label.trim_start_matches("credential path parameter ").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What [`mask_query`] would mask in `query`, by name (`token`, or what a URL's credential is):
/// the credentials a stored or exported query must not hold.
pub fn unmasked_in_query(query: &str) -> Vec<String> {
    mask_query(query)
        .map(|(_, found)| {
            found
                .into_iter()
                .map(|f| {
                    f.label
                        .strip_prefix("credential query parameter ")
                        .map_or(f.label.clone(), str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether text (a JSON string, a header value) could hold what [`mask_header_value`] masks: a
/// query (`?`), a `;` parameter, a URL with user information, or a list of `name=value` items.
/// A cheap first look.
pub(crate) fn may_hold_text_credentials(text: &str) -> bool {
    may_hold_text_urls(text)
        || has_param_delimiter(text)
        || text.contains(',') && text.contains('=')
}

/// A header value with its credentials masked, and what they were; `None` when it holds none:
/// those of absolute URLs ([`mask_urls`](crate::model::urls::mask_urls)), the query of a relative one (`Location:
/// /next?token=…`, `Refresh: 0; url=/x?token=…`, `X-Original-URL`), and `;name=value`
/// parameters (`Location: /x;token=…`, `Forwarded: for=…;token=…`).
pub fn mask_header_value(value: &str) -> Option<(String, Vec<Found>)> {
    if !may_hold_text_credentials(value) {
        return None;
    }
    let (mut text, mut found) = mask_text_urls(value).unwrap_or_else(|| (value.to_owned(), Vec::new()));
    if let Some((masked, values)) = mask_semicolon_params(&text) {
        text = masked;
        found.extend(values);
    }
    if let Some((masked, values)) = mask_list_params(&text) {
        text = masked;
        found.extend(values);
    }
    (text != value).then_some((text, found))
}

/// `text` with the value of every credential `name=value` item of a comma-separated list
/// masked, as authentication parameters are written (`WWW-Authenticate: Bearer
/// error="invalid_token", token="…"`); the name is the last word before the `=`, and quotes
/// around the value are kept. `None` when nothing was masked.
fn mask_list_params(text: &str) -> Option<(String, Vec<Found>)> {
    if !text.contains(',') || !text.contains('=') {
        return None;
    }
    let mut found = Vec::new();
    let masked = rewrite_items(text, ',', |before, value| {
            let name = before.rsplit(char::is_whitespace).next().unwrap_or(before);
            let bare = value.trim().trim_matches('"');
            // A name is a token (`token`, `access_token`): not a URL's query (`<…?token=…>`),
            // which the URL masking above has seen.
            let token = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !token || bare.is_empty() || bare == PLACEHOLDER || !is_credential_param(name) {
                return None;
            }
            found.push(Found {
                label: format!("credential parameter {name}"),
                value: bare.to_owned(),
            });
            let quoted = value.trim().starts_with('"');
            let lead = &value[..value.len() - value.trim_start().len()];
            Some(match quoted {
                true => format!("{before}={lead}\"{PLACEHOLDER}\""),
                false => format!("{before}={lead}{PLACEHOLDER}"),
            })
        });
    (!found.is_empty()).then_some((masked, found))
}

/// `text` put back together after each `name=value` item (split at `sep`) went through
/// `rewrite` (given what precedes the item's first `=` and what follows it; `None` keeps the
/// item as it was); items without `=` are kept. What the list-shaped maskings share.
pub(crate) fn rewrite_items(
    text: &str,
    sep: char,
    mut rewrite: impl FnMut(&str, &str) -> Option<String>,
) -> String {
    let items: Vec<String> = text
        .split(sep)
        .map(|item| match item.split_once('=') {
            Some((before, value)) => rewrite(before, value).unwrap_or_else(|| item.to_owned()),
            None => item.to_owned(),
        })
        .collect();
    items.join(sep.encode_utf8(&mut [0; 4]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::urls::mask_urls;

    #[test]
    fn a_delimiter_is_a_semicolon_or_its_percent_encoding_anywhere_in_the_text() {
        // The reading before the one-pass search, kept as the reference.
        let reference = |text: &str| {
            text.contains(';')
                || text.contains('%')
                    && (0..text.len()).any(|i| encoded_len_at(text.as_bytes(), i, b'b') > 0)
        };
        let texts = [
            "", "/v2/images/x", ";", "a;b", "%", "%3", "%3B", "a%3bb", "a%253Bb", "a%25253b",
            "a%2525253B", "a%2Fb", "x%;y", "%25%3B", "a%20b;c", "%%3b", "a%2F%3D", "é;", "é%3B",
        ];
        for text in texts {
            assert_eq!(has_param_delimiter(text), reference(text), "{text:?}");
        }
        assert!(!has_param_delimiter("/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52"));
        assert!(has_param_delimiter("/v2/images/x%253Btoken%3Dt"));
    }

    #[test]
    fn matrix_parameters_in_a_path_are_masked_and_the_rest_kept_byte_for_byte() {
        let (masked, found) =
            mask_path("/v2/images/abc;token=t%2B1;v=2/files;Access-Token=x;marker=m").unwrap();
        assert_eq!(
            masked,
            "/v2/images/abc;token=REDACTED;v=2/files;Access-Token=REDACTED;marker=m"
        );
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["t+1", "x"]);
        assert_eq!(unmasked_in_path("/a;password=p;sig=s"), ["password", "sig"]);
        for kept in ["/v2/images/abc", "/a;token=REDACTED", "/a;token=", "/a;token", "/a;v=1"] {
            assert_eq!(mask_path(kept), None, "{kept}");
            assert_eq!(shown_path(kept), kept);
        }
        assert_eq!(shown_path("/a;sk=s"), "/a;sk=REDACTED");
    }

    fn utf8_percent_encode_all(text: &str) -> String {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    #[test]
    fn json_held_by_a_query_value_has_its_credential_pairs_masked_as_a_forms_does() {
        let (masked, found) =
            mask_query("limit=1&filter=%7B%22access_token%22%3A%20%22SECRET_QUERY%22%7D&token=t-1").unwrap();
        assert_eq!(masked, "limit=1&filter=%7B%22access_token%22%3A+%22REDACTED%22%7D&token=REDACTED");
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["t-1", "SECRET_QUERY"]);
        assert!(found[1].label.contains("of JSON in the query"), "{}", found[1].label);
        // What it gives back is a fixed point, as the request key needs.
        assert_eq!(mask_query(&masked), None);
        // A name a NUL ends (a server reading it as C does stops there) is still the name.
        assert_eq!(mask_query("token%00=t-2&a=1").map(|m| m.0).as_deref(), Some("token%00=REDACTED&a=1"));
        // A whole document as a body's is read: every element of an array, a token's `id`.
        for (json, secret) in [
            (r#"{"password":["a1a1a1a1","b2b2b2b2"]}"#, "b2b2b2b2"),
            (r#"{"a":{"token":{"id":"secret-6"}}}"#, "secret-6"),
        ] {
            let query = format!("f={}", utf8_percent_encode_all(json));
            let (masked, found) = mask_query(&query).unwrap();
            assert!(!masked.contains(secret) && found.iter().any(|f| f.value == secret), "{masked}");
            assert!(found.iter().all(|f| f.label.ends_with("of JSON in the query")), "{found:?}");
            assert_eq!(mask_query(&masked), None, "{masked}");
        }
        // JSON with no credential in it, and quotes that are no JSON: as they were.
        for kept in ["filter=%7B%22name%22%3A%22a%22%7D", "q=%22quoted%22", "q='a'"] {
            assert_eq!(mask_query(kept), None, "{kept}");
        }
    }

    #[test]
    fn percent_encoded_matrix_parameters_and_parameters_inside_query_values_are_masked() {
        for (path, masked) in [
            ("/v2/images/x%3Btoken=t-1", "/v2/images/x%3Btoken=REDACTED"),
            ("/v2/images/x%3btoken%3dt-1/y", "/v2/images/x%3btoken%3dREDACTED/y"),
            ("/v2/images/x;token%3Dt-1", "/v2/images/x;token%3DREDACTED"),
            ("/a%3Bv=1%3Bpassword=t-1", "/a%3Bv=1%3Bpassword=REDACTED"),
        ] {
            let (got, found) = mask_path(path).unwrap();
            assert_eq!(got, masked, "{path}");
            assert_eq!(found[0].value, "t-1", "{path}");
            assert_eq!(unmasked_in_path(masked), Vec::<String>::new(), "{masked}");
        }
        assert_eq!(unmasked_in_path("/x%3Bsig%3Ds"), ["sig"]);
        for kept in ["/v2/images/x%3Bv=1", "/x%3", "/x%3B", "/100%25", "/x%3Btoken"] {
            assert_eq!(mask_path(kept), None, "{kept}");
        }
        // A query pair's value holding `;name=value` pairs (servers that split at `;` read them).
        let (got, found) = mask_query("a=1;token=t-1;b=2&c=3%3Bpassword%3Dp-2").unwrap();
        assert_eq!(got, "a=1;token=REDACTED;b=2&c=3%3Bpassword%3DREDACTED");
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["t-1", "p-2"]);
        assert_eq!(unmasked_in_query("a=1;token=t-1&c=3%3Bsk%3Ds"), ["token", "sk"]);
        assert_eq!(unmasked_in_query(&got), Vec::<String>::new());
        assert_eq!(mask_query("a;sk=s-1&b=2").unwrap().0, "a;sk=REDACTED&b=2");
        assert_eq!(unmasked_in_query("a;sk=s-1"), ["sk"]);
        // A name encoded twice is still a credential's (verify and import decode it so).
        let (got, _) = mask_query("a=1%3B%2574oken%3Ds-2&%2574oken=s-3").unwrap();
        assert_eq!(got, "a=1%3B%2574oken%3DREDACTED&%2574oken=REDACTED");
        assert_eq!(unmasked_in_query(&got), Vec::<String>::new());
        assert_eq!(mask_query("filter=a;b&sort=name"), None);
        // A URL in a value, encoded as a form encodes it.
        let (got, found) = mask_query("redirect=https%3A%2F%2Fh%2Fx%3Ftoken%3Dt-9&a=1").unwrap();
        assert_eq!(got, "redirect=https%3A%2F%2Fh%2Fx%3Ftoken%3DREDACTED&a=1");
        assert_eq!(found[0].value, "t-9");
        assert_eq!(unmasked_in_query(&got), Vec::<String>::new());
        assert_eq!(
            unmasked_in_query("redirect=https%3A%2F%2Fh%2Fx%3Ftoken%3Dt-9"),
            ["redirect (a URL with credentials)"]
        );
        assert_eq!(mask_query("next=https%3A%2F%2Fh%2Fx%3Flimit%3D1"), None);
        // A credential name holding its own encoded `=`: what follows is the value.
        let (got, found) = mask_query("password%3Dhunter2&a=1").unwrap();
        assert_eq!(got, "password=REDACTED&a=1");
        assert_eq!(found[0].value, "hunter2");
        // What is stored is accepted by import and verify: masking is idempotent.
        for query in [
            "a%3Dz;sk=s-1",
            "a%3Dz=1;token=s-1",
            "x;token%3Ds-1",
            "x;sk%3D",
            "page%2Btoken=abc",
            "%2525252574oken=s-1",
            "a=1%253Btoken%253Ds-1",
            "password%3Dhunter2",
            "token%3Ds-1",
            "a=1&x-auth-token%3Ds-1",
            "next=%2Fx%3Ftoken%3Ds-1",
            "redirect=https%253A%252F%252Fh%252Fx%253Ftoken%253Ds-1",
            "next=x?token=s-1",
        ] {
            let stored = mask_query(query).map_or(query.to_owned(), |(m, _)| m);
            assert_eq!(unmasked_in_query(&stored), Vec::<String>::new(), "{query} -> {stored}");
            assert_eq!(mask_query(&stored), None, "{query} -> {stored}");
        }
    }

    #[test]
    fn matrix_parameters_encoded_twice_or_three_times_are_masked_as_written() {
        for (path, masked, value) in [
            ("/v2/images/x%253Btoken%253Dt-1", "/v2/images/x%253Btoken%253DREDACTED", "t-1"),
            ("/x%25253btoken%25253Dt%25252B1/y", "/x%25253btoken%25253DREDACTED/y", "t+1"),
            ("/x;%2574oken=t-1", "/x;%2574oken=REDACTED", "t-1"),
            ("/x%3B%2574oken%3Dt-1", "/x%3B%2574oken%3DREDACTED", "t-1"),
            ("/x%253B%252574oken%253Dt-1", "/x%253B%252574oken%253DREDACTED", "t-1"),
            ("/x%253Bv=1%253Bsig=t-1", "/x%253Bv=1%253Bsig=REDACTED", "t-1"),
        ] {
            let (got, found) = mask_path(path).unwrap();
            assert_eq!(got, masked, "{path}");
            assert_eq!(found[0].value, value, "{path}");
            assert_eq!(mask_path(masked), None, "{masked}");
            assert_eq!(shown_path(path), masked);
        }
        // Requests with another token read the same once masked (the key masks the path so).
        assert_eq!(
            shown_path("/v2/images/x%253Btoken%253Danother"),
            shown_path("/v2/images/x%253Btoken%253Dt-1")
        );
        for kept in ["/x%253Bv=1", "/x%2525253Btoken=t-1", "/x%253", "/x%25253", "/100%2525"] {
            assert_eq!(mask_path(kept), None, "{kept}");
        }
        // Inside a query value and a header value too.
        let (got, _) = mask_query("a=1%253Btoken%253Ds-1").unwrap();
        assert_eq!(got, "a=1%253Btoken%253DREDACTED");
        let (got, _) = mask_header_value("/x%253Btoken%253Ds-1").unwrap();
        assert_eq!(got, "/x%253Btoken%253DREDACTED");
    }

    #[test]
    fn credentials_in_a_url_fragment_are_masked_like_a_querys() {
        let location = "https://app.example/cb#access_token=f-1&token_type=Bearer&id_token=f-2";
        let masked = "https://app.example/cb#access_token=REDACTED&token_type=Bearer&id_token=REDACTED";
        for mask in [mask_urls, mask_text_urls, mask_header_value] {
            let (got, found) = mask(location).unwrap();
            assert_eq!(got, masked);
            let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
            assert_eq!(values, ["f-1", "f-2"]);
            assert_eq!(mask(masked), None);
        }
        for (text, masked) in [
            ("/cb#access_token=f-1&state=1", "/cb#access_token=REDACTED&state=1"),
            ("go to /cb?a=1#token=f-1 now", "go to /cb?a=1#token=REDACTED now"),
            ("https://h/#/route?token=f-1", "https://h/#/route?token=REDACTED"),
        ] {
            assert_eq!(mask_text_urls(text).unwrap().0, masked, "{text}");
        }
        for kept in ["https://h/x#top", "issue #12 and a=b", "https://h/x#state=1", "#ff0000"] {
            assert_eq!(mask_text_urls(kept), None, "{kept}");
            assert_eq!(mask_header_value(kept), None, "{kept}");
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
            (
                "Bearer error=\"invalid_token\", token=\"t-1\"",
                "Bearer error=\"invalid_token\", token=\"REDACTED\"",
            ),
            ("Basic realm=x, access_token=t-1", "Basic realm=x, access_token=REDACTED"),
            (
                "<https://h/x?token=t-1>; rel=\"next\", <https://h/y>; rel=\"prev\"",
                "<https://h/x?token=REDACTED>; rel=\"next\", <https://h/y>; rel=\"prev\"",
            ),
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
    fn a_keystone_v2_token_named_by_the_path_is_masked() {
        for (path, masked) in [
            ("/v2.0/tokens/gAAAAAB-tok_1", "/v2.0/tokens/REDACTED"),
            ("/identity/v2.0/tokens/tok-2/endpoints", "/identity/v2.0/tokens/REDACTED/endpoints"),
            ("/v2.0/tokens/tok-3;sig=s", "/v2.0/tokens/REDACTED"),
            ("/v2.0/tokens/tok-4/x;token=t", "/v2.0/tokens/REDACTED/x;token=REDACTED"),
        ] {
            let (got, found) = mask_path(path).unwrap();
            assert_eq!(got, masked, "{path}");
            assert_eq!(found[0].label, "credential path parameter tokenId");
            assert_eq!(shown_path(path), masked);
            assert_eq!(unmasked_in_path(masked), Vec::<String>::new());
        }
        assert_eq!(unmasked_in_path("/v2.0/tokens/tok-1"), ["tokenId"]);
        // Signing in (`POST /v2.0/tokens`) names no token, nor do other paths.
        for kept in ["/v2.0/tokens", "/v2.0/tokens/", "/v3/auth/tokens", "/v2/images/tokens/x"] {
            assert_eq!(mask_path(kept), None, "{kept}");
        }
    }

}
