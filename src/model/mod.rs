//! The data: recorded interactions, request keys and match rules, recordings, header classes,
//! credentials outside headers (query, path, body, multipart parts, URL), and the redaction
//! policy and stamp as plain data.

#[cfg(test)]
pub(crate) mod fixtures;
pub(crate) mod access_keys;
pub mod answer_secrets;
pub(crate) mod assignments;
pub(crate) mod base64_text;
pub(crate) mod credential_names;
pub mod credentials;
pub(crate) mod digest_map;
pub(crate) mod encodings;
pub(crate) mod forms;
pub mod headers;
pub mod interaction;
pub(crate) mod interaction_json;
pub(crate) mod json_like;
pub mod key;
pub mod multipart;
pub(crate) mod nesting;
pub(crate) mod names;
pub mod params;
pub mod recording;
pub mod redaction;
pub mod session;
pub mod urls;
pub mod volatile;
pub(crate) mod xml_like;

/// `1 request`, `2 requests`: a count with its noun, for reports, summaries and logs.
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8>,
{
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// `haystack` with every `from` replaced by `to`, left to right; `None` when it holds none (or
/// `from` is empty).
pub(crate) fn replaced_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() {
        return None;
    }
    let finder = memchr::memmem::Finder::new(from);
    let mut at = finder.find(haystack)?;
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    loop {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
        match finder.find(rest) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(rest);
    Some(out)
}
