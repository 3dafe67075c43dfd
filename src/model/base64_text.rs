//! Credentials in text a JSON string carries base64-encoded: an instance's `user_data` (a shell
//! script or a cloud-config setting a password), a document or a config file a field sends as
//! base64. The string is decoded, the text masked as a body of its own would be, and the result
//! encoded again the way it was written (standard or URL-safe alphabet, padded or not, wrapped
//! at the same line width), so the stored request still reads as the client sent it, with
//! `REDACTED` where the secrets were.
//!
//! Besides what text bodies have masked (JSON, forms, XML, assignment lines), the text of a
//! script carries passwords in more ways, masked here:
//! - `chpasswd` input, `user:password` pairs: `echo 'root:…' | chpasswd` (or `printf`) in a
//!   shell script (as Huawei Cloud's and OpenStack's user-data guides show), the lines of a
//!   here-document fed to `chpasswd`, and the `list` of a cloud-config `chpasswd` block;
//! - `echo '…' | passwd --stdin root`: the password alone;
//! - YAML `name: value` lines and flow mappings (`{name: root, password: …}`) whose name is a
//!   credential's (cloud-config's `password: …`).
//!
//! Only strings that are base64 through and through are read: at least [`MIN_LEN`] characters
//! of one alphabet, padding only at the end, decoding to UTF-8 text. Ids, hashes and names
//! decode to bytes that are not text, and are left alone.

use base64::Engine as _;

use crate::model::assignments::value_span;
use crate::model::credentials::{Found, PLACEHOLDER};

/// The shortest string read as base64 text: 24 characters are 18 bytes, the least a
/// `password=…` line with a value can be.
const MIN_LEN: usize = 24;

/// Text with its secrets masked, and what was masked; `None` when nothing was.
pub(crate) type Masked = Option<(String, Vec<Found>)>;

/// How a base64 string was written, to write the masked text the same way.
struct Written {
    url_safe: bool,
    padded: bool,
    /// Characters a line, when the string is wrapped (MIME's 76, `base64`'s 76, PEM's 64).
    wrap: Option<usize>,
    crlf: bool,
}

/// `text` decoded when it is base64 of UTF-8 text (see the module's notes), with how it was
/// written.
fn decode(text: &str) -> Option<(String, Written)> {
    if text.len() < MIN_LEN || !starts_as_text(text) {
        return None;
    }
    let crlf = text.contains("\r\n");
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    let wrap = (lines.len() > 1).then(|| lines[0].len());
    // Wrapped lines are all as long as the first, but for the last.
    if let Some(width) = wrap
        && lines[..lines.len() - 1].iter().any(|l| l.len() != width)
    {
        return None;
    }
    let joined: String = lines.concat();
    let body = joined.trim_end_matches('=');
    let padded = body.len() != joined.len();
    if joined.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let standard = body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    let url_safe = body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(standard || url_safe) {
        return None;
    }
    // Letters and digits only are both alphabets: decoded as the standard one.
    let url_safe = !standard;
    // A length a multiple of 4 needs no padding, so says nothing: the standard alphabet's
    // encoders pad, the URL-safe one's mostly do not.
    let padded = padded || (joined.len().is_multiple_of(4) && !url_safe);
    let engine = engine(url_safe, false);
    let bytes = engine.decode(body).ok()?;
    let decoded = String::from_utf8(bytes).ok()?;
    if !crate::model::encodings::is_text_like(decoded.as_bytes()) {
        return None;
    }
    Some((decoded, Written { url_safe, padded, wrap, crlf }))
}

/// Whether `text`'s first 8 characters are base64 (either alphabet) of 6 bytes that could
/// start text: most strings a request holds (ids, UUIDs, hashes, names) fail this before
/// anything is allocated.
fn starts_as_text(text: &str) -> bool {
    let head = &text.as_bytes()[..8];
    let mut bits: u64 = 0;
    for &b in head {
        let sextet = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return false,
        };
        bits = bits << 6 | u64::from(sextet);
    }
    // UTF-8 text: printable ASCII, white space, or bytes of multi-byte characters.
    bits.to_be_bytes()[2..]
        .iter()
        .all(|&b| b >= 0x80 || b == b'\t' || b == b'\n' || b == b'\r' || (0x20..0x7f).contains(&b))
}

fn engine(url_safe: bool, padded: bool) -> base64::engine::GeneralPurpose {
    let alphabet = match url_safe {
        true => &base64::alphabet::URL_SAFE,
        false => &base64::alphabet::STANDARD,
    };
    let config = base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(padded)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    base64::engine::GeneralPurpose::new(alphabet, config)
}

/// `text` encoded as `written` says.
fn encode(text: &str, written: &Written) -> String {
    let flat = engine(written.url_safe, written.padded).encode(text);
    let Some(width) = written.wrap.filter(|w| *w > 0) else {
        return flat;
    };
    let ending = if written.crlf { "\r\n" } else { "\n" };
    flat.as_bytes()
        .chunks(width)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect::<Vec<_>>()
        .join(ending)
}

/// A base64 string (see the module's notes) with `mask` applied to the text it decodes to,
/// encoded again as it was written; `None` when it is no base64 text or `mask` found nothing.
/// Each label says the value was inside base64.
pub(crate) fn mask_base64_text(
    text: &str,
    mask: &dyn Fn(&str) -> Masked,
) -> Masked {
    let (decoded, written) = decode(text)?;
    let (masked, found) = mask(&decoded)?;
    let found = found
        .into_iter()
        .map(|f| Found {
            label: format!("{} (inside base64 text)", f.label),
            value: f.value,
        })
        .collect();
    Some((encode(&masked, &written), found))
}

/// The text a request's base64 string decodes to (see the module's notes) with its
/// credentials masked: as a body without a `Content-Type` ([`crate::model::credentials::mask_body`]: JSON, a form, XML,
/// assignment lines), then a script's `chpasswd` input and YAML secret lines.
pub(crate) fn mask_request_text(text: &str) -> Masked {
    use crate::model::credentials::{is_credential_name, mask_body};
    let label = |name: &str| format!("credential field {name} of the request body");
    // A script's and a cloud-config's own forms first, read by line (a YAML value keeps its
    // quotes and comment), then what a body's text would have masked.
    let script = mask_script_lines(text, &is_credential_name, &label);
    crate::model::assignments::and_then(script, text, |text| {
        mask_body(text.as_bytes(), None).and_then(|(masked, found)| Some((String::from_utf8(masked).ok()?, found)))
    })
}

/// `text` (a script or a cloud-config) with the passwords of its `chpasswd` and `passwd --stdin`
/// input and the values of its YAML `name: value` pairs whose name `is_secret` accepts masked
/// (see the module's notes); `None` when it holds none.
pub(crate) fn mask_script_lines(
    text: &str,
    is_secret: &dyn Fn(&str) -> bool,
    label: &dyn Fn(&str) -> String,
) -> Option<(String, Vec<Found>)> {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    // Inside a cloud-config `chpasswd:` block, its `list` lines are `user:password` pairs.
    let mut chpasswd_block: Option<usize> = None;
    // Inside a here-document fed to `chpasswd` (`chpasswd <<EOF`), every line is one, up to
    // the line that ends it.
    let mut heredoc: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let ending = &line[content.len()..];
        let indent = content.len() - content.trim_start().len();
        let trimmed = content.trim_start();
        let mut spans: Vec<(usize, usize, &str)> = Vec::new();
        if let Some(end) = &heredoc {
            if trimmed == end.as_str() {
                heredoc = None;
            } else {
                spans.extend(listed_pair_in(content, true));
            }
        } else {
            if chpasswd_block.is_some_and(|at| indent <= at && !trimmed.is_empty()) {
                chpasswd_block = None;
            }
            if trimmed.starts_with("chpasswd:") {
                chpasswd_block = Some(indent);
            }
            if content.contains("passwd") {
                spans.extend(echoed_pairs(content));
                heredoc = heredoc_end(content);
            } else if chpasswd_block.is_some() {
                spans.extend(listed_pair(content));
            }
            if spans.is_empty() {
                spans.extend(yaml_secret(content, is_secret));
            }
            if spans.is_empty() {
                spans.extend(flow_secrets(content, is_secret));
            }
        }
        let mut at = 0;
        for (start, stop, name) in spans {
            out.push_str(&content[at..start]);
            out.push_str(PLACEHOLDER);
            found.push(Found {
                label: label(name),
                value: content[start..stop].to_owned(),
            });
            at = stop;
        }
        out.push_str(&content[at..]);
        out.push_str(ending);
    }
    (!found.is_empty()).then_some((out, found))
}

/// The word ending a here-document that `line` starts (`chpasswd <<EOF`, `<<-'END'`).
fn heredoc_end(line: &str) -> Option<String> {
    let after = &line[line.find("<<")? + 2..];
    let after = after.strip_prefix('-').unwrap_or(after).trim_start();
    let word: String = after
        .chars()
        .filter(|c| !matches!(c, '\'' | '"'))
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// Where the password of each `echo 'user:password' | chpasswd` of `line` starts and stops,
/// in order (several commands may share a line: `…; echo 'admin:…' | chpasswd`).
fn echoed_pairs(line: &str) -> Vec<(usize, usize, &'static str)> {
    let mut spans = Vec::new();
    let mut from = 0;
    // `echo` or `printf`, then white space (a tab too), then what it prints. Where each word
    // next occurs is found again only once passed, so a long line is read once per word.
    let words = ["echo", "printf"];
    // `usize::MAX`: not in the rest of the line.
    let mut next: [Option<usize>; 2] = [None; 2];
    loop {
        for (i, word) in words.iter().enumerate() {
            if next[i].is_none_or(|at| at < from) {
                next[i] = Some(line[from..].find(word).map_or(usize::MAX, |found| from + found));
            }
        }
        let Some((found, word)) = (0..2)
            .filter_map(|i| next[i].filter(|at| *at != usize::MAX).map(|at| (at, words[i])))
            .min()
        else {
            break;
        };
        let mut at = found + word.len();
        from = at;
        if !line[at..].starts_with(char::is_whitespace) {
            continue;
        }
        // The pipe after the echoed words, outside their quotes.
        let Some(pipe) = pipe_outside_quotes(line, at) else {
            break;
        };
        from = pipe + 1;
        // Piped into `chpasswd` (`sudo chpasswd`, `/usr/sbin/chpasswd -e`), where a
        // `user:password` pair is printed, or into `passwd --stdin` (the password alone).
        let command = line[pipe + 1..].split([';', '&', '|']).next().unwrap_or_default();
        let whole = !command.contains("chpasswd") && command.contains("passwd") && command.contains("--stdin");
        if !command.contains("chpasswd") && !whole {
            continue;
        }
        // `echo -e`, `echo -n`: options before the pair.
        loop {
            at += line[at..pipe].len() - line[at..pipe].trim_start().len();
            if !line[at..pipe].starts_with('-') {
                break;
            }
            match line[at..pipe].find(char::is_whitespace) {
                Some(space) => at += space,
                None => break,
            }
        }
        // What is printed, less its quotes: the password, or a `user:password` pair.
        let Some((start, stop)) = value_span(line, at, at + line[at..pipe].trim_end().len()) else {
            continue;
        };
        if whole {
            spans.push((start, stop, "passwd"));
        } else if let Some(colon) = line[start..stop].find(':')
            && let Some((start, stop)) = value_span(line, start + colon + 1, stop)
        {
            spans.push((start, stop, "chpasswd"));
        }
    }
    spans
}

/// Where the first `|` of `line` from `from` on is, outside single and double quotes.
fn pipe_outside_quotes(line: &str, from: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in line.as_bytes()[from..].iter().enumerate() {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'|') => return Some(from + i),
            _ => {}
        }
    }
    None
}

/// Where the password of a `user:password` line of a cloud-config `chpasswd` list starts and
/// stops (`  root:…`, `- root:…`, `list: root:…`).
fn listed_pair(line: &str) -> Option<(usize, usize, &'static str)> {
    listed_pair_in(line, false)
}

/// [`listed_pair`]; `heredoc`: a line of a here-document fed to `chpasswd`, where every line is
/// a pair whatever its password holds (`: ` too).
fn listed_pair_in(line: &str, heredoc: bool) -> Option<(usize, usize, &'static str)> {
    let trimmed = line.trim_start();
    let mut start = line.len() - trimmed.len();
    let mut pair = trimmed;
    for prefix in ["- ", "list:"] {
        if let Some(rest) = pair.strip_prefix(prefix) {
            start += prefix.len() + (rest.len() - rest.trim_start().len());
            pair = rest.trim_start();
        }
    }
    if !heredoc && (pair.starts_with('|') || pair.starts_with("expire") || pair.contains(": ")) {
        return None;
    }
    let pair = pair.trim_end();
    let colon = pair.find(':')?;
    let user = &pair[..colon];
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return None;
    }
    let start = start + colon + 1;
    let (start, stop) = value_span(line, start, start + pair[colon + 1..].len())?;
    Some((start, stop, "chpasswd"))
}

/// Where the values of the `name: value` pairs of a YAML flow mapping on `line` whose name
/// `is_secret` accepts start and stop (`- {name: root, password: …, type: text}`, as a
/// cloud-config's `chpasswd: users:` list may be written), in order.
fn flow_secrets<'l>(line: &'l str, is_secret: &dyn Fn(&str) -> bool) -> Vec<(usize, usize, &'l str)> {
    let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    let mut at = open + 1;
    while at < close {
        let end = at + line[at..close].find(',').unwrap_or(close - at);
        let pair = &line[at..end];
        if let Some((written, value)) = pair.split_once(':') {
            let name = written.trim().trim_matches(['"', '\'']);
            let start = at + written.len() + 1 + (value.len() - value.trim_start().len());
            let stop = at + pair.trim_end().len();
            if stop > start
                && is_secret(name)
                && let Some((start, stop)) = value_span(line, start, stop)
            {
                spans.push((start, stop, name));
            }
        }
        at = end + 1;
    }
    spans
}

/// Where the value of a YAML `name: value` line whose name `is_secret` accepts starts and
/// stops (quotes kept), with the name.
fn yaml_secret<'l>(line: &'l str, is_secret: &dyn Fn(&str) -> bool) -> Option<(usize, usize, &'l str)> {
    let trimmed = line.trim_start();
    let mut at = line.len() - trimmed.len();
    if trimmed.starts_with("- ") {
        at += 2;
    }
    let name_len = line[at..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"_-".contains(b))
        .count();
    let name = &line[at..at + name_len];
    let rest = line[at + name_len..].strip_prefix(':')?;
    if name.is_empty() || !rest.starts_with([' ', '\t']) || !is_secret(name) {
        return None;
    }
    let start = line.len() - rest.trim_start().len();
    let stop = line.trim_end().len();
    // A block (`|`, `>`), a comment, a nested map or list, an anchor or alias is left.
    if stop <= start || line[start..].starts_with(['|', '>', '#', '{', '[', '&', '*']) {
        return None;
    }
    let (start, stop) = value_span(line, start, stop)?;
    Some((start, stop, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> bool {
        crate::model::credentials::is_credential_name(name)
    }

    fn script(text: &str) -> Option<(String, Vec<String>)> {
        mask_script_lines(text, &secret, &|n| format!("credential {n}"))
            .map(|(out, found)| (out, found.into_iter().map(|f| f.value).collect()))
    }

    #[test]
    fn chpasswd_input_and_yaml_secret_lines_have_their_passwords_masked_and_the_rest_kept() {
        let shell = "#!/bin/bash\necho 'root:Cloud12#$' | chpasswd ;\necho -e admin:p-2|chpasswd\necho hello\n";
        let (out, values) = script(shell).unwrap();
        assert_eq!(
            out,
            "#!/bin/bash\necho 'root:REDACTED' | chpasswd ;\necho -e admin:REDACTED|chpasswd\necho hello\n"
        );
        assert_eq!(values, ["Cloud12#$", "p-2"]);
        let cloud = "#cloud-config\npassword: \"p-3\"\nchpasswd:\n  list: |\n    root:p-4\n    ubuntu:p-5\n  expire: False\nssh_pwauth: true\nruncmd:\n  - echo done\n";
        let (out, values) = script(cloud).unwrap();
        assert_eq!(
            out,
            "#cloud-config\npassword: \"REDACTED\"\nchpasswd:\n  list: |\n    root:REDACTED\n    ubuntu:REDACTED\n  expire: False\nssh_pwauth: true\nruncmd:\n  - echo done\n"
        );
        assert_eq!(values, ["p-3", "p-4", "p-5"]);
        let inline = "chpasswd:\r\n  list:\r\n    - root:p-6\r\nhostname: web\r\n";
        assert_eq!(
            script(inline).unwrap().0,
            "chpasswd:\r\n  list:\r\n    - root:REDACTED\r\nhostname: web\r\n"
        );
        // Several on a line, a pipe inside the quotes, a here-document, an empty value.
        let (out, values) = script("echo 'root:Pw1' | chpasswd; echo \"admin:Pa|ss-2\" | sudo chpasswd\n").unwrap();
        assert_eq!(out, "echo 'root:REDACTED' | chpasswd; echo \"admin:REDACTED\" | sudo chpasswd\n");
        assert_eq!(values, ["Pw1", "Pa|ss-2"]);
        let (out, values) = script("chpasswd:\n  users:\n    - {name: root, password: fl-1, type: text}\n    - name: ops\n      password: 'bl-2'\n").unwrap();
        assert_eq!(
            out,
            "chpasswd:\n  users:\n    - {name: root, password: REDACTED, type: text}\n    - name: ops\n      password: 'REDACTED'\n"
        );
        assert_eq!(values, ["fl-1", "bl-2"]);
        let (out, values) = script("chpasswd <<'EOF'\nroot:hd-1\nops:hd-2\nEOF\necho done:ok\n").unwrap();
        assert_eq!(out, "chpasswd <<'EOF'\nroot:REDACTED\nops:REDACTED\nEOF\necho done:ok\n");
        assert_eq!(values, ["hd-1", "hd-2"]);
        // A tab after echo, printf, passwd --stdin, a here-document password holding ': '.
        let (out, values) = script("echo\t'root:t-1' | chpasswd\nprintf 'ops:pf-2\\n' | chpasswd\necho 'sd-3' | passwd --stdin root\nchpasswd <<EOF\nroot:a: b\nEOF\n").unwrap();
        assert_eq!(
            out,
            "echo\t'root:REDACTED' | chpasswd\nprintf 'ops:REDACTED' | chpasswd\necho 'REDACTED' | passwd --stdin root\nchpasswd <<EOF\nroot:REDACTED\nEOF\n"
        );
        assert_eq!(values, ["t-1", "pf-2\\n", "sd-3", "a: b"]);
        for none in [
            "echo hi | wc",
            "echo 'x' | passwd -S root",
            "echoes 'root:x' | chpasswd-like",
            "echo 'root:x' | tee f",
            "hostname: web\nusers: [a]",
            "password: |\n",
            "password: \n",
            "password:\t\r\n",
            "chpasswd: {expire: false}",
        ] {
            assert_eq!(script(none), None, "{none:?}");
        }
    }

    #[test]
    fn base64_text_is_masked_inside_and_encoded_again_as_it_was_written() {
        let mask = |t: &str| script(t).map(|(out, values)| {
            let found = values.into_iter().map(|value| Found { label: "credential chpasswd".into(), value }).collect();
            (out, found)
        });
        // `~~~` puts a `+` (a `-` URL-safe) in the encoding: the alphabet is told.
        let text = "#!/bin/bash\necho 'root:Cloud12#$~~~' | chpasswd\n";
        let expected = "#!/bin/bash\necho 'root:REDACTED' | chpasswd\n";
        let std = base64::engine::general_purpose::STANDARD;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for (encoded, again) in [
            (std.encode(text), std.encode(expected)),
            (url.encode(text), url.encode(expected)),
        ] {
            let (out, found) = mask_base64_text(&encoded, &mask).unwrap();
            assert_eq!(out, again);
            assert_eq!(found[0].value, "Cloud12#$~~~");
            assert!(found[0].label.ends_with("(inside base64 text)"), "{}", found[0].label);
        }
        // Wrapped at 20 characters a line, with CRLF (`base64 -w 20` wraps so, and ends with a
        // line ending, which the masked text does not keep).
        let wrapped = |s: String| s.as_bytes().chunks(20).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\r\n");
        let (out, _) = mask_base64_text(&wrapped(std.encode(text)), &mask).unwrap();
        assert_eq!(out, wrapped(std.encode(expected)));
        // Not base64 text: too short, a hash, binary, other characters, nothing to mask.
        let binary = std.encode([0u8, 1, 2, 200, 201, 202, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        for none in [
            std.encode("root:p|chpasswd").as_str(),
            "d41d8cd98f00b204e9800998ecf8427ed41d8cd98f00b204e9800998ecf8427e",
            binary.as_str(),
            "not base64 at all, with spaces and chpasswd",
            std.encode("just some harmless text here").as_str(),
        ] {
            assert_eq!(mask_base64_text(none, &mask), None, "{none:?}");
        }
    }
}
