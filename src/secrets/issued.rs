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
use crate::secrets::leak::{MIN_NEEDLE_LEN, Needle};

/// How many of the latest issued tokens are looked for: a test suite signs in a few times, and a
/// token older than that many sign-ins has long expired.
const KEPT: usize = 64;

/// The latest tokens answers handed out (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct Issued {
    recent: Mutex<VecDeque<Needle>>,
}

impl Issued {
    /// Remembers the tokens and receipts `answer_headers` hands out (the headers that
    /// [`takes_placeholder`]), each once, as long as the leak gate can look for one
    /// ([`MIN_NEEDLE_LEN`] bytes or more).
    pub(crate) fn remember(&self, answer_headers: &HeaderMap) {
        let mut issued = answer_headers
            .iter()
            .filter(|(name, _)| takes_placeholder(name.as_str()))
            .filter_map(|(name, value)| Some((name, value.to_str().ok()?.trim())))
            .filter(|(_, value)| value.len() >= MIN_NEEDLE_LEN)
            .peekable();
        if issued.peek().is_none() {
            return;
        }
        let mut recent = self.recent.lock().expect("no code panics while holding the issued tokens");
        for (name, value) in issued {
            if recent.iter().any(|needle| needle.value == value) {
                continue;
            }
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(Needle {
                label: format!("a token an earlier answer handed out ({name})"),
                value: value.to_owned(),
            });
        }
    }

    /// The tokens remembered, oldest first.
    pub(crate) fn needles(&self) -> Vec<Needle> {
        let recent = self.recent.lock().expect("no code panics while holding the issued tokens");
        recent.iter().cloned().collect()
    }
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
        issued.remember(&answer(&[
            ("x-subject-token", "gAAAAAissued-token-0001"),
            ("openstack-auth-receipt", "receipt-0000000002"),
            ("set-cookie", "sid=cookie-000000003"),
            ("content-type", "application/json"),
            ("x-subject-token", "short"),
        ]));
        issued.remember(&answer(&[("x-subject-token", "gAAAAAissued-token-0001")]));
        let values: Vec<String> = issued.needles().into_iter().map(|n| n.value).collect();
        assert_eq!(values, ["gAAAAAissued-token-0001", "receipt-0000000002"]);
    }

    #[test]
    fn only_the_latest_tokens_are_kept() {
        let issued = Issued::default();
        for n in 0..KEPT + 3 {
            issued.remember(&answer(&[("x-subject-token", &format!("issued-token-{n:08}"))]));
        }
        let needles = issued.needles();
        assert_eq!(needles.len(), KEPT);
        assert_eq!(needles[0].value, "issued-token-00000003");
        assert!(needles[0].label.contains("x-subject-token"), "{}", needles[0].label);
    }
}
