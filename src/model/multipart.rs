//! Credentials in `multipart/*` request bodies (`form-data`, RFC 7578; `mixed`, `related`): a
//! part whose name is a credential (`Content-Disposition: form-data; name="password"`, or
//! `name*=UTF-8''password`) has its content replaced by [`PLACEHOLDER`], and a part holding JSON
//! or a form has its credential fields masked, byte for byte around them, so the other parts (an
//! uploaded file, say) stay as sent. Used through [`crate::model::credentials::mask_body`], like
//! JSON and form bodies.

use crate::model::credentials::{Found, PLACEHOLDER, is_credential_name};

/// The boundary of a `multipart/*` content type (`form-data`, also `mixed`, `related`:
/// `boundary=xyz` or `boundary="x y"`), or `None` for any other content type.
pub fn boundary(content_type: Option<&str>) -> Option<&str> {
    let mut params = content_type?.split(';');
    let media = params.next()?.trim();
    if !media
        .get(..10)
        .is_some_and(|m| m.eq_ignore_ascii_case("multipart/"))
    {
        return None;
    }
    params.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = unquoted(value);
        (name.trim().eq_ignore_ascii_case("boundary") && !value.is_empty()).then_some(value)
    })
}

/// The boundary of a body that is multipart by its bytes though its content type does not say
/// so (see [`body_boundary`]): it starts with a delimiter line (`--` and 1 to 70
/// boundary characters, RFC 2046 5.1.1) and its first part names itself with a
/// `Content-Disposition` header. `None` for any other body.
pub fn sniffed_boundary(body: &[u8]) -> Option<&str> {
    // `--`, at most 70 characters, a line break.
    let line_end = memchr::memchr(b'\n', &body[..body.len().min(74)])?;
    let line = body[..line_end].strip_suffix(b"\r").unwrap_or(&body[..line_end]);
    let boundary = line.strip_prefix(b"--")?;
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(b);
    if boundary.is_empty() || boundary.len() > 70 || !boundary.iter().all(allowed) || boundary.ends_with(b" ") {
        return None;
    }
    let rest = &body[line_end + 1..];
    let (head_end, _) = find_blank_line(rest)?;
    let head = String::from_utf8_lossy(&rest[..head_end]);
    part_header(&unfolded(&head), "content-disposition")?;
    std::str::from_utf8(boundary).ok()
}

/// The boundary `body`'s parts are delimited by: the one its content type names when the body
/// holds it, else the one its bytes show ([`sniffed_boundary`]): a client that sets
/// `Content-Type: multipart/form-data` by hand drops the boundary (requests, axios and fetch
/// users do), or sends a form's bytes under another type.
pub fn body_boundary<'a>(content_type: Option<&'a str>, body: &'a [u8]) -> Option<&'a str> {
    let declared = boundary(content_type)
        .filter(|b| memchr::memmem::find(body, format!("--{b}").as_bytes()).is_some());
    declared.or_else(|| sniffed_boundary(body))
}

/// `body` with the content of each credential part replaced by [`PLACEHOLDER`], and what was
/// replaced; `None` when no part is a credential (or the body has no part at all).
pub fn mask(body: &[u8], boundary: &str) -> Option<(Vec<u8>, Vec<Found>)> {
    let delimiter = format!("--{boundary}");
    let starts: Vec<usize> = memchr::memmem::find_iter(body, delimiter.as_bytes())
        // A delimiter starts the body or a line of its own.
        .filter(|&at| at == 0 || body[..at].ends_with(b"\n"))
        .collect();
    let mut out = Vec::with_capacity(body.len());
    let mut copied = 0;
    let mut found = Vec::new();
    for pair in starts.windows(2) {
        let (start, next) = (pair[0] + delimiter.len(), pair[1]);
        // The part: its headers, a blank line, its content, then the line break that belongs
        // to the next delimiter.
        let part = &body[start..next];
        let Some((head_end, blank)) = find_blank_line(part) else {
            continue;
        };
        let content_end = if part.ends_with(b"\r\n") {
            part.len() - 2
        } else if part.ends_with(b"\n") {
            part.len() - 1
        } else {
            part.len()
        };
        let content_start = head_end + blank;
        if content_start > content_end {
            continue;
        }
        let head = unfolded(&String::from_utf8_lossy(&part[..head_end]));
        let name = part_header_param(&head, "content-disposition", "name");
        let content = &part[content_start..content_end];
        if content.is_empty() || content == PLACEHOLDER.as_bytes() {
            continue;
        }
        let masked = match &name {
            Some(name) if is_credential_name(name) => {
                found.push(Found {
                    label: format!("credential part {name} of the multipart request body"),
                    value: String::from_utf8_lossy(content).into_owned(),
                });
                PLACEHOLDER.as_bytes().to_vec()
            }
            // A part holding JSON or a form (`name="meta"`, `application/json`): its credential
            // fields, as in a body of its own.
            _ => {
                let content_type = part_header(&head, "content-type");
                match crate::model::credentials::mask_body(content, content_type.as_deref()) {
                    Some((masked, values)) => {
                        found.extend(values);
                        masked
                    }
                    // Encoded (`Content-Transfer-Encoding: base64`, UTF-16): what it holds cannot
                    // be masked in place, but joins the needles, and the leak gate, which reads
                    // base64 and UTF-16, refuses the body.
                    // A compressed part's type is the archive's (`application/gzip`): what it
                    // holds is read as untyped text (a form, an env file) too.
                    None => match decoded_part(&head, content).and_then(|d| {
                        crate::model::credentials::mask_body(&d, content_type.as_deref())
                            .or_else(|| crate::model::credentials::mask_body(&d, None))
                    }) {
                        Some((_, values)) => {
                            found.extend(values);
                            content.to_vec()
                        }
                        None => continue,
                    },
                }
            }
        };
        out.extend_from_slice(&body[copied..start + content_start]);
        out.extend_from_slice(&masked);
        copied = start + content_end;
    }
    if found.is_empty() {
        return None;
    }
    out.extend_from_slice(&body[copied..]);
    Some((out, found))
}

/// Where a part's headers end and how long the blank line after them is (`\r\n\r\n`, or
/// `\n\n` from a client that writes bare line feeds).
fn find_blank_line(part: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr::memmem::find(part, b"\r\n\r\n").map(|at| (at, 4));
    let lf = memchr::memmem::find(part, b"\n\n").map(|at| (at, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A part's content as the bytes it stands for when it is encoded: `Content-Transfer-Encoding:
/// base64`, gzip or zlib (in layers), UTF-16 text; `None` when it is none of these.
fn decoded_part(head: &str, content: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let base64 = part_header(head, "content-transfer-encoding")
        .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
    let bytes = match base64 {
        true => {
            let text: Vec<u8> = content.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(text).ok()?
        }
        false => content.to_vec(),
    };
    // A compressed part (`type=application/gzip` holding a JSON or a form): what it holds.
    let inflated = crate::model::encodings::inflate_layers(&bytes);
    let decoded = base64 || inflated.is_some();
    let bytes = inflated.unwrap_or(bytes);
    match crate::model::encodings::from_utf16(&bytes) {
        Some(text) => Some(text),
        None => decoded.then_some(bytes),
    }
}

/// A part's `head` with its folded header lines joined (a line starting with a space or a tab
/// continues the one before it, RFC 5322 2.2.3).
fn unfolded(head: &str) -> String {
    let mut out = String::with_capacity(head.len());
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.starts_with([' ', '\t']) {
            true if !out.is_empty() => {
                out.push(' ');
                out.push_str(line.trim_start());
            }
            _ => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(line);
            }
        }
    }
    out
}

/// The value of header `wanted` in a part's `head`.
fn part_header(head: &str, wanted: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (header, value) = line.split_once(':')?;
        header
            .trim()
            .eq_ignore_ascii_case(wanted)
            .then(|| value.trim().to_owned())
    })
}

/// Parameter `wanted` of header `header` in a part's `head` (`name` of `Content-Disposition`,
/// not `filename`), also written as RFC 5987 says (`name*=UTF-8''pass%77ord`).
fn part_header_param(head: &str, header: &str, wanted: &str) -> Option<String> {
    let value = part_header(head, header)?;
    value.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let name = name.trim();
        if name.eq_ignore_ascii_case(wanted) {
            return Some(unquoted(value).to_owned());
        }
        let extended = name.strip_suffix('*')?;
        if !extended.eq_ignore_ascii_case(wanted) {
            return None;
        }
        let (_charset_and_language, encoded) = unquoted(value).rsplit_once('\'')?;
        Some(percent_encoding::percent_decode_str(encoded).decode_utf8_lossy().into_owned())
    })
}

/// A header parameter's value, trimmed and without its quotes (`"a b"` → `a b`).
fn unquoted(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, &str)], newline: &str) -> Vec<u8> {
        let mut out = String::new();
        for (name, content) in parts {
            out.push_str(&format!(
                "--XyZ{newline}Content-Disposition: form-data; name=\"{name}\"{newline}{newline}{content}{newline}"
            ));
        }
        out.push_str(&format!("--XyZ--{newline}"));
        out.into_bytes()
    }

    /// A body multipart by its bytes (sent without a type, or as `text/plain`) has its boundary
    /// read from its first line, when its first part says what it is; other text has none.
    #[test]
    fn a_multipart_body_without_its_type_is_known_by_its_first_part() {
        for newline in ["\r\n", "\n"] {
            let sent = body(&[("user", "alice"), ("password", "Pa55-sniffed")], newline);
            assert_eq!(sniffed_boundary(&sent), Some("XyZ"), "{newline:?}");
            let (masked, found) = crate::model::credentials::mask_body(&sent, None).unwrap();
            assert_eq!(found[0].value, "Pa55-sniffed");
            assert!(!String::from_utf8_lossy(&masked).contains("Pa55"));
            let (_, found) = crate::model::credentials::mask_body(&sent, Some("text/plain")).unwrap();
            assert_eq!(found.len(), 1);
        }
        for text in [
            &b"--XyZ\r\nno blank line"[..],
            b"-- a comment\n\njust text",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--XyZ--",
            b"---\ntitle: front matter\n---\n",
            b"{\"a\": 1}",
            b"",
        ] {
            assert_eq!(sniffed_boundary(text), None, "{}", String::from_utf8_lossy(text));
        }
        let long = format!("--{}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n", "b".repeat(71));
        assert_eq!(sniffed_boundary(long.as_bytes()), None);
    }

    /// A part header folded onto two lines is read as one.
    #[test]
    fn a_folded_part_header_is_read_as_one_line() {
        let sent = b"--XyZ\r\nContent-Disposition: form-data;\r\n name=\"password\"\r\n\r\nPa55-folded\r\n--XyZ--\r\n";
        let (masked, found) = mask(sent, "XyZ").unwrap();
        assert_eq!(found[0].value, "Pa55-folded");
        assert!(!String::from_utf8_lossy(&masked).contains("Pa55"));
    }

    #[test]
    fn the_boundary_is_read_only_from_a_multipart_type() {
        assert_eq!(boundary(Some("multipart/form-data; boundary=XyZ")), Some("XyZ"));
        assert_eq!(boundary(Some("multipart/mixed; boundary=XyZ")), Some("XyZ"));
        assert_eq!(boundary(Some("multipart; boundary=XyZ")), None);
        assert_eq!(boundary(Some("Multipart/Form-Data;BOUNDARY=\"a b\"")), Some("a b"));
        assert_eq!(boundary(Some("multipart/form-data")), None);
        assert_eq!(boundary(Some("application/json; boundary=XyZ")), None);
        assert_eq!(boundary(None), None);
    }

    #[test]
    fn a_part_holding_json_or_named_the_rfc_5987_way_has_its_credentials_masked() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{\"name\":\"n\",\"password\":\"pw-json-1\"}\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name*=UTF-8''pass%77ord\r\n\r\npw-rfc-2\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nplain bytes\r\n--XyZ--\r\n";
        let (masked, found) = mask(body.as_bytes(), "XyZ").unwrap();
        let masked = String::from_utf8(masked).unwrap();
        for secret in ["pw-json-1", "pw-rfc-2"] {
            assert!(!masked.contains(secret), "{masked}");
            assert!(found.iter().any(|f| f.value == secret));
        }
        assert!(masked.contains(r#"{"name":"n","password":"REDACTED"}"#), "{masked}");
        assert!(masked.contains("\r\n\r\nplain bytes\r\n"), "{masked}");
    }

    #[test]
    fn a_json_part_in_base64_or_utf16_has_its_credentials_found_though_left_as_sent() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(br#"{"password":"pw-b64-1"}"#);
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XyZ--\r\n"
        );
        let (kept, found) = mask(body.as_bytes(), "XyZ").unwrap();
        assert_eq!(kept, body.as_bytes());
        assert_eq!(found[0].value, "pw-b64-1");
    }

    #[test]
    fn credential_parts_are_masked_and_every_other_byte_is_kept() {
        for newline in ["\r\n", "\n"] {
            let sent = body(
                &[("name", "cirros"), ("password", "hunter2"), ("api_key", "k-1"), ("file", "a\r\nb")],
                newline,
            );
            let (masked, found) = mask(&sent, "XyZ").expect("two credential parts");
            let want = body(
                &[("name", "cirros"), ("password", PLACEHOLDER), ("api_key", PLACEHOLDER), ("file", "a\r\nb")],
                newline,
            );
            assert_eq!(String::from_utf8(masked).unwrap(), String::from_utf8(want).unwrap());
            let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
            assert_eq!(values, ["hunter2", "k-1"]);
            assert!(found[0].label.contains("password"), "{:?}", found[0]);
        }
    }

    #[test]
    fn a_body_without_credential_parts_or_without_parts_is_left_alone() {
        assert!(mask(&body(&[("name", "cirros")], "\r\n"), "XyZ").is_none());
        assert!(mask(b"password=hunter2", "XyZ").is_none());
        assert!(mask(&body(&[("password", PLACEHOLDER)], "\r\n"), "XyZ").is_none());
        // `filename` is not the part's name.
        let upload = b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"password\"\r\n\r\nbytes\r\n--XyZ--\r\n";
        assert!(mask(upload, "XyZ").is_none());
    }
}
