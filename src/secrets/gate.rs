//! The one gate every write goes through, whatever its source (a live recording, a HAR entry, a
//! cassette being exported): redact (when a redactor is configured), refuse the interaction if
//! a secret is still in it in any encoding (the leak gate), then key it under the store's
//! match rules.

use std::borrow::Cow;

use crate::model::interaction::Interaction;
use crate::model::key::{MatchRules, RequestKey};
use crate::secrets::leak::Needle;
use crate::secrets::redact::{Redactor, find_leak};

/// Redaction, leak check and keying, in that order.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    redactor: Option<&'a Redactor>,
    rules: &'a MatchRules,
}

/// What the gate let through.
pub struct Passed<'a> {
    /// The key the interaction is stored under (computed after redaction).
    pub key: RequestKey,
    /// The interaction as it may be written: redacted when a redactor is configured.
    pub interaction: Cow<'a, Interaction>,
    /// True when the redactor ran.
    pub redacted: bool,
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
        }
    }
}

impl<'a> Gate<'a> {
    /// A gate applying `redactor` (if any), then keying with `rules`.
    pub fn new(redactor: Option<&'a Redactor>, rules: &'a MatchRules) -> Self {
        Gate { redactor, rules }
    }

    /// Runs one interaction through the gate. `needles` are the secrets known to travel with it
    /// (the request's credential headers, the proxy's own keys); the redacted values are added
    /// to them before the leak check.
    pub fn pass<'i>(
        &self,
        interaction: &'i Interaction,
        mut needles: Vec<Needle>,
    ) -> Result<Passed<'i>, Refusal> {
        let (stored, redacted) = match self.redactor {
            None => (Cow::Borrowed(interaction), false),
            Some(redactor) => {
                let (redacted, values) =
                    redactor.redact(interaction).map_err(Refusal::Redaction)?;
                needles.extend(values);
                (Cow::Owned(redacted), true)
            }
        };
        if let Some(leak) = find_leak(&stored, needles) {
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
        })
    }
}
