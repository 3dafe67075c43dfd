//! Credentials in text that looks like JSON but does not parse: the last resort of body masking.
//!
//! Clients and servers send JSON that a strict parser refuses: Python's `json.dumps` writes
//! `NaN`, some endpoints answer several documents one per line (NDJSON) or add text after the
//! document, hand-written bodies use single quotes or comments, a body may be cut short, and a
//! document nested deeper than the parser's limit (128 levels) does not parse at all. Each of
//! these kept its `"password"` or `"access_token"` as sent. So when a body is text but no JSON,
//! its `"name": value` pairs are found lexically (double- or single-quoted names; string, quoted
//! or bare scalar values), and the value of a credential name is replaced by `"REDACTED"`,
//! leaving every other byte as it was. Values that are arrays or objects are left to the pairs
//! inside them.

use std::borrow::Cow;

use crate::model::credentials::{Found, PLACEHOLDER};

/// `text` with the value of every `"name": value` pair whose name `is_secret` accepts (given
/// the name and the value as written, unquoted) replaced by `"REDACTED"`, and what was
/// replaced, each labelled by `label(name)`. `None` when nothing was.
pub(crate) fn mask_fields(
    text: &str,
    is_secret: &dyn Fn(&str, &str) -> bool,
    label: &dyn Fn(&str) -> String,
) -> Option<(String, Vec<Found>)> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b':') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    // Bytes up to `copied` are in `out` already.
    let (mut copied, mut at) = (0usize, 0usize);
    while at < bytes.len() {
        let quote = bytes[at];
        let name_end = if quote == b'"' || quote == b'\'' {
            match string_end(bytes, at) {
                Some(end) => end,
                None => break,
            }
        } else if is_name_start(quote) && (at == 0 || !is_name_byte(bytes[at - 1])) {
            // A bare name, as JavaScript and JSON5 write them (`{password: "…"}`), or as text
            // does (`token: …`); not a URL's scheme (`https://`).
            let end = (at..bytes.len())
                .find(|i| !is_name_byte(bytes[*i]))
                .unwrap_or(bytes.len());
            let colon = skip_space(bytes, end);
            if bytes.get(colon) != Some(&b':') || bytes.get(colon + 1) == Some(&b'/') {
                at = end;
                continue;
            }
            end - 1
        } else {
            at += 1;
            continue;
        };
        let mut value_at = skip_space(bytes, name_end + 1);
        if bytes.get(value_at) != Some(&b':') {
            at = name_end + 1;
            continue;
        }
        let colon = value_at;
        value_at = skip_space(bytes, value_at + 1);
        // After a bare name (YAML, text: `password:` with nothing after it), a value on a
        // later line is not its value: the next line's name (`root_password: …`) would be
        // taken for it, masked, and the secret after it kept.
        let bare = !matches!(bytes[at], b'"' | b'\'');
        if bare && bytes[colon..value_at].iter().any(|b| matches!(b, b'\n' | b'\r')) {
            at = colon + 1;
            continue;
        }
        let name = unquoted(&text[at..=name_end]);
        let value_end = match bytes.get(value_at) {
            Some(b'"' | b'\'') => match string_end(bytes, value_at) {
                Some(end) => end,
                None => break,
            },
            Some(b'{' | b'[') | None => {
                at = value_at;
                continue;
            }
            Some(_) => scalar_end(bytes, value_at),
        };
        let written = &text[value_at..=value_end];
        let value = unquoted(written);
        let secret = !value.is_empty()
            && value != PLACEHOLDER
            && !matches!(written, "null" | "true" | "false")
            && is_secret(&name, &value);
        if secret {
            out.push_str(&text[copied..value_at]);
            out.push('"');
            out.push_str(PLACEHOLDER);
            out.push('"');
            copied = value_end + 1;
            found.push(Found {
                label: label(&name),
                value: value.into_owned(),
            });
        }
        at = value_end + 1;
    }
    if found.is_empty() {
        return None;
    }
    out.push_str(&text[copied..]);
    Some((out, found))
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-')
}

/// Where the string quoted by `bytes[start]` (`"` or `'`) ends (its closing quote), skipping
/// backslash escapes; `None` when it does not.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let quote = bytes[start];
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b if b == quote => return Some(at),
            _ => at += 1,
        }
    }
    None
}

/// The last byte of a bare scalar (`123`, `NaN`, `hunter2`) starting at `start`.
fn scalar_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start;
    while at + 1 < bytes.len() && !matches!(bytes[at + 1], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
    {
        at += 1;
    }
    at
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// A quoted string's text (JSON escapes decoded when they decode), or a bare scalar as it is.
fn unquoted(written: &str) -> Cow<'_, str> {
    let Some(quote) = written.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Cow::Borrowed(written);
    };
    let inner = &written[1..written.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let json = if quote == '"' {
        Cow::Borrowed(written)
    } else {
        Cow::Owned(format!("\"{}\"", inner.replace('"', "\\\"").replace("\\'", "'")))
    };
    serde_json::from_str::<String>(&json).map_or(Cow::Borrowed(inner), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(text: &str) -> Option<(String, Vec<String>)> {
        mask_fields(
            text,
            &|name, _| crate::model::credentials::is_credential_name(name),
            &|name| format!("field {name}"),
        )
        .map(|(masked, found)| (masked, found.into_iter().map(|f| f.value).collect()))
    }

    #[test]
    fn credential_values_in_text_that_is_not_json_are_masked_and_the_rest_kept() {
        for (text, masked, values) in [
            (
                r#"{"password": "p-1", "n": NaN}"#,
                r#"{"password": "REDACTED", "n": NaN}"#,
                vec!["p-1"],
            ),
            (
                "{\"access_token\":\"t-1\"}\n{\"access_token\":\"t-2\"}\n",
                "{\"access_token\":\"REDACTED\"}\n{\"access_token\":\"REDACTED\"}\n",
                vec!["t-1", "t-2"],
            ),
            (
                r#"{'password': 'p-2', 'user': 'u'} trailing"#,
                r#"{'password': "REDACTED", 'user': 'u'} trailing"#,
                vec!["p-2"],
            ),
            (r#"{"secret": 12345, "x": 1"#, r#"{"secret": "REDACTED", "x": 1"#, vec!["12345"]),
            // A bare name with nothing after it on its line: the next line's pair is read.
            (
                "password:\nroot_password: Sec50xQw9\n",
                "password:\nroot_password: \"REDACTED\"\n",
                vec!["Sec50xQw9"],
            ),
            (
                r#"{password:"p-4", user: 'u', link: "https://h/x"}"#,
                r#"{password:"REDACTED", user: 'u', link: "https://h/x"}"#,
                vec!["p-4"],
            ),
            ("token: t-5\nnext: https://h/a", "token: \"REDACTED\"\nnext: https://h/a", vec!["t-5"]),
            (
                r#"{"pass\u0077ord": "p\"3", "token": null, "password": "REDACTED"}"#,
                r#"{"pass\u0077ord": "REDACTED", "token": null, "password": "REDACTED"}"#,
                vec!["p\"3"],
            ),
        ] {
            let (got, found) = mask(text).unwrap();
            assert_eq!(got, masked, "{text}");
            assert_eq!(found, values, "{text}");
        }
        let deep = format!(r#"{}{{"access_token": "t-deep"}}{}"#, "[".repeat(200), "]".repeat(200));
        let (got, found) = mask(&deep).unwrap();
        assert!(!got.contains("t-deep") && found == ["t-deep"]);
        for clean in [r#"{"name": "n", "tags": ["a"]}"#, "no colon here", r#"{"password": "#, "\"open"] {
            assert!(mask(clean).is_none(), "{clean}");
        }
    }
}
