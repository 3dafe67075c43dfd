//! The redaction policy (which fields, headers and query parameters hold account identifiers)
//! and the stamp a redacted recording carries, as plain data. The engine that applies them lives
//! in `secrets::redact`.

use serde::{Deserialize, Serialize};

/// What is redacted. Names compare case-insensitively for headers, exactly for fields and
/// query parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionPolicy {
    /// JSON field names whose string values are replaced, at any depth of any JSON body. A name
    /// `parent.field` takes `field` only directly inside an object that is the value of `parent`
    /// (or an element of an array that is): `project.id` is Keystone's `token.project.id`,
    /// `projects.id` each `projects[].id`, while a bare `id` would take every id.
    pub fields: Vec<String>,
    /// Header names (request and response) whose values are replaced.
    pub headers: Vec<String>,
    /// Query parameter names whose values are replaced.
    pub query: Vec<String>,
}

impl Default for RedactionPolicy {
    /// The account identifiers IMS puts in image bodies and requests: `owner` (the project ID),
    /// `__account_code`, the `X-Project-Id` header and the `?owner=` filter; and those identity
    /// traffic carries: project, user and domain ids (`projects[].id`, `token.project.id`,
    /// `token.user.id`, `domain.id`, `project_id`, `user_id`, `domain_id`) and the user and
    /// domain names (`user.name`, `domain.name`, also in a sign-in request).
    fn default() -> Self {
        RedactionPolicy {
            fields: [
                "owner",
                "__account_code",
                "project_id",
                "user_id",
                "domain_id",
                "projects.id",
                "project.id",
                "user.id",
                "user.name",
                "domain.id",
                "domain.name",
            ]
            .map(String::from)
            .to_vec(),
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

    /// True when the field `name`, directly inside the object that is (or is an element of)
    /// the value of `parent`, is redacted: `name` is a policy field, or `parent.name` is.
    pub(crate) fn selects(&self, parent: Option<&str>, name: &str) -> bool {
        self.fields.iter().any(|f| match f.split_once('.') {
            None => f == name,
            Some((p, n)) => n == name && parent == Some(p),
        })
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
    /// A check of every value the policy's names hold in the redacted recording: 8 hex digits
    /// of an unkeyed hash of each pseudonym (`secrets::vouch`), sorted. `verify
    /// --require-redaction` and a later redaction use it to tell a pseudonym this redaction
    /// wrote from a value put there afterwards (a raw owner pasted into a cassette). It names
    /// nothing that is not already in the file. Absent in stamps written before it existed
    /// (`None`); empty when the recording holds no such value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym_checks: Option<Vec<String>>,
}

impl RedactionStamp {
    /// The same policy with the same key (whatever values each vouches for).
    pub fn same_redaction(&self, other: &RedactionStamp) -> bool {
        self.policy == other.policy && self.key_fingerprint == other.key_fingerprint
    }
}
