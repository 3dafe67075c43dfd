//! The redaction policy (which fields, headers and query parameters hold account identifiers)
//! and the stamp a redacted recording carries, as plain data. The engine that applies them lives
//! in `secrets::redact`.

use serde::{Deserialize, Serialize};

/// What is redacted. Names compare case-insensitively for headers, exactly for fields and
/// query parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionPolicy {
    /// JSON field names whose string values are replaced, at any depth of any JSON body.
    pub fields: Vec<String>,
    /// Header names (request and response) whose values are replaced.
    pub headers: Vec<String>,
    /// Query parameter names whose values are replaced.
    pub query: Vec<String>,
}

impl Default for RedactionPolicy {
    /// The account identifiers IMS puts in image bodies and requests: `owner` (the project ID),
    /// `__account_code`, the `X-Project-Id` header and the `?owner=` filter.
    fn default() -> Self {
        RedactionPolicy {
            fields: vec!["owner".into(), "__account_code".into()],
            headers: vec!["x-project-id".into()],
            query: vec!["owner".into()],
        }
    }
}

impl RedactionPolicy {
    /// Adds names (deduplicated, headers lower-cased).
    pub fn extend(&mut self, fields: &[String], headers: &[String], query: &[String]) {
        fn add(list: &mut Vec<String>, items: impl Iterator<Item = String>) {
            for item in items {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        add(&mut self.fields, fields.iter().cloned());
        add(
            &mut self.headers,
            headers.iter().map(|h| h.to_ascii_lowercase()),
        );
        add(&mut self.query, query.iter().cloned());
    }

    /// True when every name of `other` is also in `self`.
    pub fn covers(&self, other: &RedactionPolicy) -> bool {
        other.fields.iter().all(|f| self.fields.contains(f))
            && other
                .headers
                .iter()
                .all(|h| self.headers.iter().any(|s| s.eq_ignore_ascii_case(h)))
            && other.query.iter().all(|q| self.query.contains(q))
    }

    pub(crate) fn is_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Written into every redacted recording and cassette: what was redacted and with which key
/// (its fingerprint only; the key itself is never written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionStamp {
    /// The policy applied.
    #[serde(flatten)]
    pub policy: RedactionPolicy,
    /// `PseudonymKey::fingerprint` of the key used.
    pub key_fingerprint: String,
}
