//! The tokens answers handed out while recording (`X-Subject-Token`, a receipt): the leak gate
//! looks for them in every later exchange of the process, not only in the one that issued them.
//!
//! A token a sign-in answer hands out is dropped from what is stored (a placeholder stands in
//! for it). A later request may carry it where no credential rule looks (a path segment, an
//! ordinary query parameter, a body a service echoes), or another answer may quote it: it is a
//! credential there too, and the proxy knows it, so that exchange is refused, as one carrying
//! its own token there is.

use std::collections::VecDeque;
use std::sync::Mutex;

use hyper::HeaderMap;

use crate::model::headers::takes_placeholder;
use crate::secrets::leak::Needle;

/// How many of the latest issued tokens are looked for: a test suite signs in a few times, and a
/// token older than that many sign-ins has long expired. Each adds a needle (in every encoding)
/// to every later exchange's leak check, so they are few.
const KEPT: usize = 8;

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
            let value = tail(whole);
            if recent.iter().any(|(needle, _)| needle.value == value) {
                continue;
            }
            if recent.len() == KEPT {
                recent.pop_front();
            }
            let needle = Needle {
                label: format!("a token an earlier answer handed out ({name})"),
                value: value.to_owned(),
            };
            recent.push_back((needle, whole.to_owned()));
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
}
