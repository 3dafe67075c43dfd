//! The one gate every write goes through, whatever its source (a live recording, a HAR entry, a
//! cassette being exported): mask credentials outside the named headers (query parameters,
//! request-body fields, URL user information), redact (when a redactor is configured), refuse
//! the interaction if a secret is still in it in any encoding (the leak gate), then key it under
//! the store's match rules.

use std::borrow::Cow;

use crate::model::interaction::{Encoded, Interaction};
use crate::model::key::{MatchRules, RequestKey};
use crate::secrets::leak::Needle;
use crate::secrets::pseudonym::PseudonymKey;
use crate::secrets::exposure::unreadable_request_coding;
use crate::secrets::leak_check::scan_for_leak;
use crate::secrets::exposure::{mask_credentials_besides, unmaskable_credentials};
use crate::secrets::redact::Redactor;

/// Credential masking, redaction, leak check and keying, in that order.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    redactor: Option<&'a Redactor>,
    rules: &'a MatchRules,
    /// Pseudonymises the access key ids an answer hands out (live data: record, HAR import);
    /// `None` for data that was through the gate already (cassette export).
    access_key: Option<&'a PseudonymKey>,
}

/// What the gate let through.
pub struct Passed<'a> {
    /// The key the interaction is stored under (computed after redaction).
    pub key: RequestKey,
    /// The interaction as it may be written: redacted when a redactor is configured.
    pub interaction: Cow<'a, Interaction>,
    /// True when the redactor ran.
    pub redacted: bool,
    /// `interaction` serialised, when the leak scan had to serialise it (it had secrets to look
    /// for): what the store writes, so it is not serialised twice.
    pub encoded: Option<Encoded>,
    /// The secrets the answer's body handed out (masked in `interaction`): see
    /// [`crate::secrets::exposure::Masked::handed_out`].
    pub handed_out: Vec<Needle>,
}

/// Why the gate refused an interaction. The message names what leaked, never its value.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The redactor could not apply its policy.
    Redaction(String),
    /// A secret is still present after redaction.
    Leak {
        /// Which secret (a header or field name, never the value).
        label: String,
        /// The encoding it was found in (raw, percent, base64, ...).
        encoding: &'static str,
    },
    /// The request cannot be keyed (its body does not parse as what it claims to be).
    Key(String),
    /// The request body is in a `Content-Encoding` the gate cannot read, so it cannot be
    /// checked for credentials (the coding is named).
    Unreadable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Redaction(why) => write!(f, "redaction failed: {why}"),
            Refusal::Leak { label, encoding } => write!(
                f,
                "the value of {label} is still present ({encoding}) after redaction (leak gate)"
            ),
            Refusal::Key(why) => write!(f, "the request cannot be keyed: {why}"),
            Refusal::Unreadable(coding) => write!(
                f,
                "the request body is in Content-Encoding {coding}, which the leak gate cannot \
                 read to check it for credentials"
            ),
        }
    }
}

impl<'a> Gate<'a> {
    /// A gate applying `redactor` (if any), then keying with `rules`.
    pub fn new(redactor: Option<&'a Redactor>, rules: &'a MatchRules) -> Self {
        Gate {
            redactor,
            rules,
            access_key: None,
        }
    }

    /// Replaces the access key ids an answer hands out (`credential.access`) by their
    /// pseudonyms under `key`: for data that has not been through a gate yet.
    pub fn pseudonymising(mut self, key: &'a PseudonymKey) -> Self {
        self.access_key = Some(key);
        self
    }

    /// Runs one interaction through the gate. `needles` are the secrets known to travel with it
    /// (the request's credential headers, the proxy's own keys); the redacted values are added
    /// to them before the leak check.
    pub fn pass<'i>(
        &self,
        interaction: &'i Interaction,
        mut needles: Vec<Needle>,
    ) -> Result<Passed<'i>, Refusal> {
        if let Some(coding) = unreadable_request_coding(&interaction.request) {
            return Err(Refusal::Unreadable(coding));
        }
        // Credentials in a body kept as it is (compressed, UTF-16, Latin-1, a file) cannot be
        // masked: the exchange is refused, however short the value.
        let unmaskable = unmaskable_credentials(interaction, self.access_key);
        if let Some(found) = unmaskable.first() {
            return Err(Refusal::Leak {
                label: found.label.clone(),
                encoding: "in a body stored as it is",
            });
        }
        // Credentials outside the named headers (query, body, URL user information) first:
        // they are never stored, redaction or not.
        let mut handed_out = Vec::new();
        let masked = match mask_credentials_besides(interaction, self.access_key, unmaskable) {
            Some(masked) => {
                needles.extend(masked.needles);
                handed_out = masked.handed_out;
                Cow::Owned(masked.interaction)
            }
            None => Cow::Borrowed(interaction),
        };
        let (stored, redacted) = match self.redactor {
            None => (masked, false),
            Some(redactor) => {
                let (redacted, values) = redactor.redact(&masked).map_err(Refusal::Redaction)?;
                needles.extend(values);
                (Cow::Owned(redacted), true)
            }
        };
        let (leak, encoded) = scan_for_leak(&stored, needles);
        if let Some(leak) = leak {
            return Err(Refusal::Leak {
                label: leak.label,
                encoding: leak.encoding,
            });
        }
        let key = RequestKey::of_recorded(self.rules, &stored.request).map_err(Refusal::Key)?;
        Ok(Passed {
            key,
            interaction: stored,
            redacted,
            encoded,
            handed_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interaction::{Body, RecordedRequest, RecordedResponse};

    fn interaction(query: &str, body: &str, response: &str) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: "POST".into(),
                path: "/v2/images".into(),
                query: Some(query.into()),
                headers: vec![("content-type".into(), "application/json".into())],
                body: Body::from_bytes(body.as_bytes()),
                session: None,
            },
            response: RecordedResponse {
                status: 200,
                headers: vec![],
                body: Body::from_bytes(response.as_bytes()),
                recorded_at: String::new(),
                latency_ms: 0,
                upstream: "https://svc:upstream-pw-55@ims.example".into(),
                other_upstreams: Vec::new(),
            },
            redaction: None,
        }
    }

    #[test]
    fn a_credential_in_a_body_kept_as_it_is_refuses_the_exchange_however_short() {
        let rules = MatchRules::default();
        let with_body = |content_type: &str, body: &[u8]| {
            let mut exchange = interaction("", "", r#"{"id":"x"}"#);
            exchange.request.headers = vec![("content-type".into(), content_type.into())];
            exchange.request.body = Body::from_bytes(body);
            exchange
        };
        let spaces = " ".repeat(80);
        for (what, exchange) in [
            ("latin-1 json", with_body("application/json", b"{\"name\":\"Ren\xe9\",\"password\":\"pw12\"}")),
            ("latin-1 form", with_body("application/x-www-form-urlencoded", b"username=Ren\xe9&password=pw12")),
            ("json after white space", with_body("application/json", &[spaces.as_bytes(), b"{\"password\":\"pw12\",\"n\":\"\xe9\"}"].concat())),
            ("a file", with_body("application/octet-stream", br#"{"password":"pw12"}"#)),
        ] {
            let refused = Gate::new(None, &rules).pass(&exchange, vec![]).err();
            assert!(
                matches!(&refused, Some(Refusal::Leak { label, .. }) if label.contains("password")),
                "{what}: {refused:?}"
            );
        }
        // A file without a credential is stored byte for byte.
        let file = with_body("application/octet-stream", br#"{"name":"fixture"}"#);
        let passed = Gate::new(None, &rules).pass(&file, vec![]).unwrap();
        assert_eq!(passed.interaction.request.body, file.request.body);
    }

    #[test]
    fn credentials_in_the_query_body_and_origin_are_masked_before_anything_is_stored() {
        let original = interaction(
            "limit=1&access_token=query-tok-123",
            r#"{"name":"n","auth":{"password":"body-pw-456"}}"#,
            r#"{"id":"x"}"#,
        );
        let rules = MatchRules::default();
        let passed = Gate::new(None, &rules).pass(&original, vec![]).unwrap();
        let stored = serde_json::to_string(&*passed.interaction).unwrap();
        for secret in ["query-tok-123", "body-pw-456", "upstream-pw-55", "svc:"] {
            assert!(!stored.contains(secret), "{secret}: {stored}");
        }
        assert_eq!(
            passed.interaction.request.query.as_deref(),
            Some("limit=1&access_token=REDACTED")
        );
        assert_eq!(passed.interaction.response.upstream, "https://ims.example");
        // Keyed like the request as sent: a client with other credentials matches it.
        let live = interaction(
            "access_token=other&limit=1",
            r#"{"auth":{"password":"other"},"name":"n"}"#,
            "",
        );
        assert_eq!(
            passed.key,
            RequestKey::of_recorded(&rules, &live.request).unwrap()
        );
    }

    #[test]
    fn an_answer_echoing_a_masked_credential_is_refused_naming_it() {
        for (response, label) in [
            (r#"{"echo":"query-tok-123"}"#, "access_token"),
            (r#"{"echo":"body-pw-456"}"#, "password"),
            (r#"{"echo":"upstream-pw-55"}"#, "user information"),
        ] {
            let leaky = interaction(
                "access_token=query-tok-123",
                r#"{"password":"body-pw-456"}"#,
                response,
            );
            let refusal = Gate::new(None, &MatchRules::default())
                .pass(&leaky, vec![])
                .err()
                .unwrap();
            assert!(
                matches!(&refusal, Refusal::Leak { label: l, .. } if l.contains(label)),
                "{refusal}"
            );
        }
    }

    #[test]
    fn what_the_leak_scan_serialised_is_handed_on_and_is_what_the_stored_interaction_serialises_to()
    {
        let rules = MatchRules::default();
        let needle = |value: &str| Needle {
            label: "the X-Auth-Token header".into(),
            value: value.into(),
        };
        // A secret to look for: the scan serialises the stored (masked) interaction once, and
        // those bytes are what the store writes.
        let masked = interaction("limit=1&access_token=query-tok-123", "{}", r#"{"id":"x"}"#);
        let passed = Gate::new(None, &rules)
            .pass(&masked, vec![needle("header-token-789")])
            .unwrap();
        let encoded = passed.encoded.as_ref().expect("the scan serialised it");
        assert_eq!(
            encoded.as_bytes(),
            Encoded::of(&passed.interaction).as_bytes()
        );
        assert!(!String::from_utf8_lossy(encoded.as_bytes()).contains("query-tok-123"));
        // Nothing to look for: nothing serialised, the store serialises it itself.
        let mut plain = interaction("limit=1", "{}", r#"{"id":"x"}"#);
        plain.response.upstream = "https://ims.example".into();
        let passed = Gate::new(None, &rules).pass(&plain, vec![]).unwrap();
        assert!(passed.encoded.is_none());
    }
}
