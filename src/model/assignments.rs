//! Credentials in text written as assignments, one a line: env files (`OS_PASSWORD=…`,
//! `export OS_PASSWORD="…"`), properties and INI files (`password = …` under a `[section]`, among
//! `#` and `;` comments), whatever ends the lines (`\n`, `\r\n`, `\r`). A form is read as one
//! first ([`crate::model::credentials::looks_like_form_lines`]); this reads the text that is
//! not one because of a comment, a section, spaces around `=` or an `export`. Only the value is
//! replaced, quotes and everything else on the line kept.

use crate::model::credentials::{Found, PLACEHOLDER};

/// `text` with the value of every assignment line whose name `is_secret` accepts replaced by
/// [`PLACEHOLDER`], and what was replaced (labelled by `label` of the name); `None` when there
/// is none.
pub(crate) fn mask_lines(
    text: &str,
    is_secret: &dyn Fn(&str) -> bool,
    label: &dyn Fn(&str) -> String,
) -> Option<(String, Vec<Found>)> {
    // Most text holds no `=` at all.
    memchr::memchr(b'=', text.as_bytes())?;
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let (line, after) = rest.split_at(end);
        match secret_value(line, is_secret) {
            Some((name, start, stop)) => {
                out.push_str(&line[..start]);
                out.push_str(PLACEHOLDER);
                out.push_str(&line[stop..]);
                found.push(Found {
                    label: label(name),
                    value: line[start..stop].to_owned(),
                });
            }
            None => out.push_str(line),
        }
        // The line's ending, as it was.
        let ending = after.len() - after.trim_start_matches(['\n', '\r']).len();
        out.push_str(&after[..ending.min(2).min(after.len())]);
        rest = &after[ending.min(2).min(after.len())..];
    }
    (!found.is_empty()).then_some((out, found))
}

/// [`mask_lines`], then `then` on what it leaves (the JSON-like fields of text no parser takes),
/// what both masked together; `None` when neither masked anything.
pub(crate) fn mask_lines_then(
    text: &str,
    is_secret: &dyn Fn(&str) -> bool,
    label: &dyn Fn(&str) -> String,
    then: impl FnOnce(&str) -> Option<(String, Vec<Found>)>,
) -> Option<(String, Vec<Found>)> {
    and_then(mask_lines(text, is_secret, label), text, then)
}

/// `then` on what a first masking (`first`, of `text`) left, what both masked together; `None`
/// when neither masked anything.
pub(crate) fn and_then(
    first: Option<(String, Vec<Found>)>,
    text: &str,
    then: impl FnOnce(&str) -> Option<(String, Vec<Found>)>,
) -> Option<(String, Vec<Found>)> {
    let text = first.as_ref().map_or(text, |(masked, _)| masked.as_str());
    match (then(text), first) {
        (None, first) => first,
        (Some(second), None) => Some(second),
        (Some((masked, more)), Some((_, mut found))) => {
            found.extend(more);
            Some((masked, found))
        }
    }
}

/// The name of an assignment `line` and where its value starts and stops, when the name is a
/// secret's and the value is not empty (or masked already). Quotes around the value stay.
fn secret_value<'l>(line: &'l str, is_secret: &dyn Fn(&str) -> bool) -> Option<(&'l str, usize, usize)> {
    let start = line.len() - line.trim_start_matches([' ', '\t']).len();
    let mut at = start;
    if line[at..].starts_with("export ") {
        at += "export ".len();
    }
    let name_len = line[at..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
        .count();
    if name_len == 0 {
        return None;
    }
    let name = &line[at..at + name_len];
    let after_name = &line[at + name_len..];
    let equals = after_name.trim_start_matches([' ', '\t']);
    let value_part = equals.strip_prefix('=')?;
    let value_start = line.len() - value_part.trim_start_matches([' ', '\t']).len();
    let value_stop = line.trim_end_matches([' ', '\t']).len();
    if value_stop <= value_start || !is_secret(name) {
        return None;
    }
    let (start, stop) = value_span(line, value_start, value_stop)?;
    Some((name, start, stop))
}

/// Where the value written at `start..stop` of `line` starts and stops, less one pair of
/// matching quotes around it (`"…"`, `'…'`), when it is one to mask: not empty, and not
/// [`PLACEHOLDER`] already. How every line reader here and in `base64_text` ends.
pub(crate) fn value_span(line: &str, start: usize, stop: usize) -> Option<(usize, usize)> {
    let value = line.as_bytes().get(start..stop)?;
    let quoted = value.len() >= 2 && matches!(value[0], b'"' | b'\'') && value[value.len() - 1] == value[0];
    let (start, stop) = match quoted {
        true => (start + 1, stop - 1),
        false => (start, stop),
    };
    (stop > start && &line[start..stop] != PLACEHOLDER).then_some((start, stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> Option<(String, Vec<String>)> {
        let secret = |name: &str| crate::model::credentials::is_credential_name(name);
        mask_lines(text, &secret, &|name| format!("credential {name}"))
            .map(|(out, found)| (out, found.into_iter().map(|f| f.value).collect()))
    }

    #[test]
    fn env_properties_and_ini_assignments_have_their_secret_values_masked_and_the_rest_kept() {
        let text = "# creds\n[auth]\nuser = alice\npassword = p-1 \r\nexport OS_PASSWORD=\"p-2\"\rtoken=\tp-3\t\n\n; done";
        let (out, values) = masked(text).unwrap();
        assert_eq!(
            out,
            "# creds\n[auth]\nuser = alice\npassword = REDACTED \r\nexport OS_PASSWORD=\"REDACTED\"\rtoken=\tREDACTED\t\n\n; done"
        );
        assert_eq!(values, ["p-1", "p-2", "p-3"]);
        for none in ["no assignment here", "password is p", "password=", "password=REDACTED\n", "= x", "user=a\n"] {
            assert_eq!(masked(none), None, "{none:?}");
        }
    }
}
