//! Reading a whole store back as recordings: for export, the read-only views and replay without
//! a pack. One damaged entry never hides the rest from the views.

use crate::error::{Error, Result};
use crate::model::key::{MatchRules, RequestKey};
use crate::model::recording::Recording;
use crate::model::interaction::Interaction;
use crate::storage::layout::decode_interaction;
use crate::storage::store::Store;

impl Store {
    /// The stored answers of the request whose key digest is `digest`, in recorded order.
    pub fn answers_of(&self, digest: &[u8; 32]) -> Result<Vec<Interaction>> {
        self.merged_of(digest)?
            .into_iter()
            .map(|(key, value)| decode_interaction(&value).map_err(|e| self.corrupt_at(&key, e)))
            .collect()
    }

    /// Every recording, answers in recorded order, sorted by digest. Keys are recomputed with
    /// `rules` so a change of rules is reflected.
    pub fn load(&self, rules: &MatchRules) -> Result<Vec<Recording>> {
        self.load_with(rules, &mut Err)
    }

    /// [`Store::load`], but a request with an entry that does not decode is left out and the
    /// error naming the entry returned beside the rest: what the read-only views (`ls`, `show`, `drift`) use, so one
    /// damaged entry never hides every other recording. A failure to read the store itself
    /// still fails.
    pub fn load_readable(&self, rules: &MatchRules) -> Result<(Vec<Recording>, Vec<Error>)> {
        let mut damaged = Vec::new();
        let recordings = self.load_with(rules, &mut |e| {
            damaged.push(e);
            Ok(())
        })?;
        Ok((recordings, damaged))
    }

    /// [`Store::load`], calling `damaged` with the error of each entry that does not decode
    /// (its error stops the load); the request it belongs to is left out whole.
    fn load_with(
        &self,
        rules: &MatchRules,
        damaged: &mut dyn FnMut(Error) -> Result<()>,
    ) -> Result<Vec<Recording>> {
        let mut out: Vec<Recording> = Vec::new();
        let mut current: Option<[u8; 32]> = None;
        // A request with a damaged answer is left out whole: its other answers, served without
        // it, would replay in another order than recorded.
        let mut damaged_request: Option<[u8; 32]> = None;
        for entry in self.entries() {
            let entry = match entry {
                Ok(entry) => entry,
                // A key of the wrong shape belongs to no request: named, and the rest read.
                Err(e @ Error::StoreCorrupt { .. }) => {
                    damaged(e)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let digest = entry.digest;
            if damaged_request == Some(digest) {
                continue;
            }
            let decoded = decode_interaction(&entry.value).and_then(|interaction| {
                if current == Some(digest) {
                    Ok((interaction, None))
                } else {
                    let key = RequestKey::of_recorded(rules, &interaction.request)?;
                    Ok((interaction, Some(key)))
                }
            });
            match decoded {
                Err(reason) => {
                    damaged(self.corrupt(&entry, reason))?;
                    if current == Some(digest) {
                        out.pop();
                        current = None;
                    }
                    damaged_request = Some(digest);
                }
                Ok((interaction, None)) => out
                    .last_mut()
                    .expect("current is set only after a push")
                    .answers
                    .push(interaction),
                Ok((interaction, Some(key))) => {
                    out.push(Recording {
                        key,
                        answers: vec![interaction],
                    });
                    current = Some(digest);
                }
            }
        }
        Ok(out)
    }
}
