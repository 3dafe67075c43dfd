//! Credentials in `multipart/form-data` request bodies (RFC 7578): a part whose name is a
//! credential (`Content-Disposition: form-data; name="password"`) has its content replaced by
//! [`PLACEHOLDER`], byte for byte around it, so the other parts (an uploaded file, say) stay as
//! sent. Used through [`crate::model::credentials::mask_body`], like JSON and form bodies.

use crate::model::credentials::{Found, PLACEHOLDER, is_credential_name};

/// The boundary of a `multipart/form-data` content type (`boundary=xyz` or `boundary="x y"`),
/// or `None` for any other content type.
pub fn boundary(content_type: Option<&str>) -> Option<&str> {
    let mut params = content_type?.split(';');
    if !params
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    params.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = unquoted(value);
        (name.trim().eq_ignore_ascii_case("boundary") && !value.is_empty()).then_some(value)
    })
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
        let Some(name) = part_name(&part[..head_end]) else {
            continue;
        };
        let content = &part[content_start..content_end];
        if !is_credential_name(&name) || content.is_empty() || content == PLACEHOLDER.as_bytes() {
            continue;
        }
        found.push(Found {
            label: format!("credential part {name} of the multipart request body"),
            value: String::from_utf8_lossy(content).into_owned(),
        });
        out.extend_from_slice(&body[copied..start + content_start]);
        out.extend_from_slice(PLACEHOLDER.as_bytes());
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

/// The `name` parameter of a part's `Content-Disposition` header (not `filename`).
fn part_name(head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    head.lines().find_map(|line| {
        let (header, value) = line.split_once(':')?;
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("name")
                .then(|| unquoted(value).to_owned())
        })
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

    #[test]
    fn the_boundary_is_read_only_from_a_multipart_form_type() {
        assert_eq!(boundary(Some("multipart/form-data; boundary=XyZ")), Some("XyZ"));
        assert_eq!(boundary(Some("Multipart/Form-Data;BOUNDARY=\"a b\"")), Some("a b"));
        assert_eq!(boundary(Some("multipart/form-data")), None);
        assert_eq!(boundary(Some("application/json; boundary=XyZ")), None);
        assert_eq!(boundary(None), None);
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
