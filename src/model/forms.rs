//! Form bodies (`name=value&…`): how a body is told to be one, typed so or not, ending with a
//! line ending or written a form a line (an env file), and its credential values masked line by
//! line ([`mask_query_pairs`] of each line).

use crate::model::credentials::Found;
use crate::model::params::mask_query_pairs;

/// True when a request body with this `Content-Type` is a form (`name=value&...`).
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    })
}

/// Whether a body sent without a `Content-Type` reads as a form (`name=value&...`, one line,
/// every pair with a name and `=`, names of URL-safe characters): clients (and `curl -d`
/// without `-H`) send forms so, and its credentials are masked as a form's.
pub(crate) fn looks_like_form(body: &[u8]) -> bool {
    let name_char = |b: &u8| b.is_ascii_alphanumeric() || b"_-.~%[]+".contains(b);
    // Pair by pair, so JSON, XML and most text are turned away at their first byte (this runs
    // on every recorded text answer).
    let mut rest = body;
    loop {
        let name = rest.iter().take_while(|b| name_char(b)).count();
        if name == 0 || rest.get(name) != Some(&b'=') {
            return false;
        }
        let end = memchr::memchr(b'&', rest).unwrap_or(rest.len());
        if rest[..end].iter().any(|b| b.is_ascii_whitespace() && *b != b' ') {
            return false;
        }
        if end == rest.len() {
            return true;
        }
        rest = &rest[end + 1..];
    }
}

/// Whether a body reads as a form line by line: every line that is not empty reads as one (see
/// [`looks_like_form`]), and there is one. A form as `curl -d @file` or a token endpoint sends it
/// ends with a line ending (`access_token=…&expires_in=3600\n`), and an env file or a properties
/// file (`user=a\npassword=…\n`) is a form a line. Masked by [`mask_form_lines`].
pub(crate) fn looks_like_form_lines(body: &[u8]) -> bool {
    // JSON, XML and most text are turned away at their first byte, before any line is looked
    // for (this runs on every recorded text answer).
    let first = body.iter().find(|&&b| b != b'\n' && b != b'\r');
    if !first.is_some_and(|b| b.is_ascii_alphanumeric() || b"_-.~%[]+".contains(b)) {
        return false;
    }
    let mut any = false;
    let mut rest = body;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.is_empty() {
            if !looks_like_form(line) {
                return false;
            }
            any = true;
        }
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    any
}

/// A form's credential values masked line by line ([`mask_query_pairs`] of each line, its line
/// ending kept as it was), and what was masked; `None` when there is nothing to mask. (JSON a
/// field holds is masked by the body's reader, which names it as the body's.)
pub(crate) fn mask_form_lines(text: &str) -> Option<(String, Vec<Found>)> {
    if !text.contains('\n') {
        return mask_query_pairs(text);
    }
    let (out, found) = masked_by_line(text, mask_query_pairs);
    (!found.is_empty() || out != text).then_some((out, found))
}

/// `mask` applied to each line of `text` (its ending, `\n` or `\r\n`, kept as it was; a line
/// `mask` gives `None` for kept as it was too): the text, and what was masked.
fn masked_by_line(
    text: &str,
    mut mask: impl FnMut(&str) -> Option<(String, Vec<Found>)>,
) -> (String, Vec<Found>) {
    let mut found = Vec::new();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let pairs = line.strip_suffix('\n').unwrap_or(line);
        let pairs = pairs.strip_suffix('\r').unwrap_or(pairs);
        match mask(pairs) {
            Some((masked, in_line)) => {
                out.push_str(&masked);
                found.extend(in_line);
            }
            None => out.push_str(pairs),
        }
        out.push_str(&line[pairs.len()..]);
    }
    (out, found)
}

/// A form's values masked line by line where `is_secret` accepts the pair's name (decoded), each
/// line's ending kept: an answer's forms, read by an answer's narrower names (`access_token` is
/// one, `key` and `auth` are not), where [`mask_form_lines`] reads a request's.
pub(crate) fn mask_form_lines_by(
    text: &str,
    is_secret: &dyn Fn(&str) -> bool,
    label: &dyn Fn(&str) -> String,
) -> Option<(String, Vec<Found>)> {
    use crate::model::credentials::PLACEHOLDER;
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut found = Vec::new();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let pairs = line.strip_suffix('\n').unwrap_or(line);
        let pairs = pairs.strip_suffix('\r').unwrap_or(pairs);
        for (i, pair) in pairs.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, value))
                    if is_secret(&decode(name)) && !value.is_empty() && decode(value) != PLACEHOLDER =>
                {
                    found.push(Found {
                        label: label(&decode(name)),
                        value: decode(value),
                    });
                    out.push_str(name);
                    out.push('=');
                    out.push_str(PLACEHOLDER);
                }
                _ => out.push_str(pair),
            }
        }
        out.push_str(&line[pairs.len()..]);
    }
    (!found.is_empty()).then_some((out, found))
}

/// [`mask_json_in_form_values`] line by line, each line's ending kept, as [`mask_form_lines`]
/// reads a body's pairs: a form a line (or text under a form's type) whose lines were read as one
/// form had a value running into the next line, masked whole, and encoded with that line's
/// break, so masking again read another form (and keyed it otherwise).
pub(crate) fn mask_json_in_form_lines(text: &str, place: &str) -> Option<(String, Vec<Found>)> {
    // A line holding no value's JSON may be JSON-like text itself (`"token": "…"`, a body
    // under a form's type that is none): its pairs too, when it quotes something (a form's
    // `scope=openid token:read` is a form's value, not a `token` field).
    let line = |pairs: &str| {
        mask_json_in_form_values(pairs, place).or_else(|| {
            (pairs.contains(['"', '\''])).then_some(())?;
            crate::model::json_like::mask_fields(
                pairs,
                &|field, _| crate::model::credentials::is_credential_name(field),
                &|field| format!("credential field {field} of {place}"),
            )
        })
    };
    let (out, found) = masked_by_line(text, line);
    (!found.is_empty()).then_some((out, found))
}

/// A form (or a query) with the credential pairs of the JSON its values hold masked (see
/// [`crate::model::json_like`]), each such value encoded again; `None` when no value holds any.
/// `place` names where the form is in what is found (`the request body`).
pub(crate) fn mask_json_in_form_values(form: &str, place: &str) -> Option<(String, Vec<Found>)> {
    // A JSON name and value are quoted: nothing to find without a quote, raw or encoded.
    if !(form.contains('"') || form.contains("%22") || form.contains('\'') || form.contains("%27")) {
        return None;
    }
    let mut found = Vec::new();
    let masked = crate::model::params::rewrite_items(form, '&', |name, value| {
            let plus = value.replace('+', " ");
            let decoded = percent_encoding::percent_decode_str(&plus).decode_utf8_lossy();
            // The pairs found in text that looks like JSON, its spacing kept (what ims-vcr
            // stored before, so a recording keeps its key); then the whole document as a body's
            // is read for what those miss (every element of a credential's array, a token
            // object's `id`, IAM's `hw_ak_sk`), written compactly only when there is such a one.
            let label = |field: &str| format!("credential field {field} of {place}");
            let lenient = crate::model::json_like::mask_fields(&decoded, &|field, _| crate::model::credentials::is_credential_name(field), &label);
            let text = lenient.as_ref().map_or(&*decoded, |(masked, _)| masked.as_str());
            let strict = crate::model::credentials::mask_json_text(text, &mut |json| {
                let mut found = crate::model::credentials::mask_json(json);
                for f in &mut found {
                    let field = f.label.strip_prefix("credential field ").unwrap_or(&f.label);
                    f.label = label(field.strip_suffix(" of the request body").unwrap_or(field));
                }
                found
            });
            let masked = match (lenient, strict) {
                (Some((_, mut found)), Some((masked, more))) => {
                    found.extend(more);
                    Some((masked, found))
                }
                (lenient, strict) => strict.or(lenient),
            };
            let (masked, in_value) = masked?;
            found.extend(in_value);
            let encoded: String = form_urlencoded::byte_serialize(masked.as_bytes()).collect();
            Some(format!("{name}={encoded}"))
        });
    (!found.is_empty()).then_some((masked, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_told_from_other_text_pair_by_pair() {
        for form in ["a=1", "a=1&b=", "token%5B%5D=x&b=two words", "x[y]=1&z=2", "a=1=2"] {
            assert!(looks_like_form(form.as_bytes()), "{form}");
        }
        for other in ["", "=1", "a", "a=1&", "a=1&&b=2", r#"{"a":1}"#, "a=1\nb=2", "a b=1", "a=1&b"] {
            assert!(!looks_like_form(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn a_form_may_end_with_a_line_ending_or_be_a_form_a_line_and_keeps_them_masked() {
        for form in ["a=1\n", "a=1&b=2\r\n", "user=a\npassword=b\n\n", "A=1\r\nB=2"] {
            assert!(looks_like_form_lines(form.as_bytes()), "{form:?}");
        }
        for other in ["", "\n", "a=1\nnot a form\n", "{\"a\":1}\n", "a=1\tb\n"] {
            assert!(!looks_like_form_lines(other.as_bytes()), "{other:?}");
        }
        let (masked, found) = mask_form_lines("user=a\r\npassword=pw-1\r\nx=1&token=t-2\n").unwrap();
        assert_eq!(masked, "user=a\r\npassword=REDACTED\r\nx=1&token=REDACTED\n");
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["pw-1", "t-2"]);
        assert_eq!(mask_form_lines("name=a\n"), None);
    }
}
