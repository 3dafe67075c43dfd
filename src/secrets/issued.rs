//! The tokens answers handed out while recording (`X-Subject-Token`, a receipt) and the secrets
//! their bodies hand out (temporary credentials' `secret` and `securitytoken`, a Keystone v2
//! token's `id`, an application credential's `secret`): the leak gate looks for them in every
//! later exchange of the process, not only in the one that issued them.
//!
//! A token a sign-in answer hands out is dropped from what is stored (a placeholder stands in
//! for it). A later request may carry it where no credential rule looks (a path segment, an
//! ordinary query parameter, a body a service echoes), or another answer may quote it: it is a
//! credential there too, and the proxy knows it, so that exchange is refused, as one carrying
//! its own token there is. Passthrough, which reads no body, remembers the headers' tokens
//! only, to mask them in its log lines.

use std::collections::VecDeque;
use std::sync::Mutex;

use hyper::HeaderMap;

use crate::model::headers::takes_placeholder;
use crate::secrets::leak::Needle;

/// How many of the latest issued tokens and secrets are looked for: a test suite signs in a
/// few times (a temporary credential hands out two secrets), and a token older than that many
/// sign-ins has long expired. Each adds a needle (in every encoding) to every later exchange's
/// leak check, so they are few.
const KEPT: usize = 16;

/// The shortest token remembered: a test double's `123456` would refuse every later answer that
/// happens to hold the number; real tokens are far longer (a Keystone Fernet token 180 bytes or
/// so, an IAM token several KB).
const MIN_REMEMBERED: usize = 16;

/// How much of a longer token is looked for: its end (trailing `=` padding left out). A token
/// repeated whole holds it, and it is what differs between tokens (a signature, a MAC), where
/// an IAM token's start is the same CMS header for every token. Looking for KB-long needles in
/// every encoding would cost every later recording milliseconds.
const TAIL: usize = 32;

/// The latest tokens answers handed out (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct Issued {
    /// Each token's needle (its tail) and the whole token (for what a log line shows).
    recent: Mutex<VecDeque<(Needle, String)>>,
}

impl Issued {
    /// Remembers the tokens and receipts `answer_headers` hands out (the headers that
    /// [`takes_placeholder`]), each once, by their last [`TAIL`] bytes, when they are
    /// [`MIN_REMEMBERED`] bytes or more.
    pub(crate) fn remember(&self, answer_headers: &HeaderMap) {
        let mut issued = answer_headers
            .iter()
            .filter(|(name, _)| takes_placeholder(name.as_str()))
            .filter_map(|(name, value)| Some((name, value.to_str().ok()?.trim())))
            .filter(|(_, value)| value.len() >= MIN_REMEMBERED)
            .peekable();
        if issued.peek().is_none() {
            return;
        }
        let mut recent = self.recent.lock().expect("no code panics while holding the issued tokens");
        for (name, whole) in issued {
            keep(&mut recent, || format!("a token an earlier answer handed out ({name})"), whole);
        }
    }

    /// Remembers the secrets an answer's body handed out (`handed_out`, see
    /// [`crate::secrets::exposure::Masked::handed_out`]), as [`Issued::remember`] does tokens.
    pub(crate) fn remember_handed_out(&self, handed_out: &[Needle]) {
        let mut secrets = handed_out.iter().filter(|n| n.value.trim().len() >= MIN_REMEMBERED).peekable();
        if secrets.peek().is_none() {
            return;
        }
        let mut recent = self.recent.lock().expect("no code panics while holding the issued tokens");
        for secret in secrets {
            let label = || format!("a secret an earlier answer handed out ({})", secret.label);
            keep(&mut recent, label, secret.value.trim());
        }
    }

    /// The tokens remembered (their tails), oldest first: what the leak gate looks for.
    pub(crate) fn needles(&self) -> Vec<Needle> {
        let recent = self.recent.lock().expect("no code panics while holding the issued tokens");
        recent.iter().map(|(needle, _)| needle.clone()).collect()
    }

    /// The tokens remembered, whole, oldest first: what a log line showing a refused exchange
    /// masks (masking only the tail would print the rest of the token).
    pub(crate) fn whole(&self) -> Vec<Needle> {
        let recent = self.recent.lock().expect("no code panics while holding the issued tokens");
        recent.iter().map(|(needle, whole)| Needle { label: needle.label.clone(), value: whole.clone() }).collect()
    }
}

/// Adds `whole` (by its [`tail`]) to `recent` unless it is there, dropping the oldest beyond
/// [`KEPT`].
fn keep(recent: &mut VecDeque<(Needle, String)>, label: impl FnOnce() -> String, whole: &str) {
    let value = tail(whole);
    if recent.iter().any(|(needle, _)| needle.value == value) {
        return;
    }
    if recent.len() == KEPT {
        recent.pop_front();
    }
    let needle = Needle {
        label: label(),
        value: value.to_owned(),
    };
    recent.push_back((needle, whole.to_owned()));
}

/// The last [`TAIL`] bytes of `token` without its `=` padding (the whole of a shorter one), on a
/// character boundary.
fn tail(token: &str) -> &str {
    let token = token.trim_end_matches('=');
    let mut start = token.len().saturating_sub(TAIL);
    while !token.is_char_boundary(start) {
        start += 1;
    }
    &token[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn tokens_and_receipts_are_remembered_once_each_and_other_headers_never() {
        let issued = Issued::default();
        let long = format!("MIIYXgYJKoZIhvcNAQcCoIIYTzCCGEsCAQExDTALBglghkgBZQMEAgEw{}==", "ab".repeat(40));
        issued.remember(&answer(&[
            ("x-subject-token", "gAAAAAissued-token-0001"),
            ("openstack-auth-receipt", "receipt-0000000002"),
            ("set-cookie", "sid=cookie-000000003"),
            ("content-type", "application/json"),
            ("x-subject-token", "123456"),
            ("x-subject-token", &long),
        ]));
        issued.remember(&answer(&[("x-subject-token", "gAAAAAissued-token-0001")]));
        let values: Vec<String> = issued.needles().into_iter().map(|n| n.value).collect();
        // A header map holds a name's values together, in their order.
        assert_eq!(values, ["gAAAAAissued-token-0001", &"ab".repeat(16), "receipt-0000000002"]);
    }

    #[test]
    fn only_the_latest_tokens_are_kept() {
        let issued = Issued::default();
        for n in 0..KEPT + 3 {
            issued.remember(&answer(&[("x-subject-token", &format!("issued-token-{n:08}"))]));
        }
        let needles = issued.needles();
        assert_eq!(needles.len(), KEPT);
        assert_eq!(issued.whole().len(), KEPT);
        assert_eq!(needles[0].value, "issued-token-00000003");
        assert!(needles[0].label.contains("x-subject-token"), "{}", needles[0].label);
    }

    #[test]
    fn secrets_an_answer_body_handed_out_are_remembered_with_the_tokens() {
        let issued = Issued::default();
        issued.remember(&answer(&[("x-subject-token", "gAAAAAissued-token-0001")]));
        let handed = |label: &str, value: &str| Needle {
            label: label.to_owned(),
            value: value.to_owned(),
        };
        issued.remember_handed_out(&[
            handed("credential field secret of the answer body", "Sk9vQm2LpXr7Tt1Ww3Yy5Zz8Aa0Bb2Cc4Dd6Ee8Ff"),
            handed("credential field securitytoken of the answer body", "short"),
            handed("credential field secret of the answer body", "gAAAAAissued-token-0001"),
        ]);
        let needles = issued.needles();
        let values: Vec<&str> = needles.iter().map(|n| n.value.as_str()).collect();
        // The short one is not kept; one already remembered is not kept twice.
        assert_eq!(values, ["gAAAAAissued-token-0001", "Xr7Tt1Ww3Yy5Zz8Aa0Bb2Cc4Dd6Ee8Ff"]);
        assert!(needles[1].label.contains("secret of the answer body"), "{}", needles[1].label);
        assert_eq!(issued.whole()[1].value, "Sk9vQm2LpXr7Tt1Ww3Yy5Zz8Aa0Bb2Cc4Dd6Ee8Ff");
    }
}
