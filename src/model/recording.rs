//! A recording: one request key with its answers in recorded order, the unit of matching, of a
//! cassette file and of replay, and the one place answers are grouped into recordings.

use std::collections::HashMap;

use crate::model::interaction::Interaction;
use crate::model::key::RequestKey;

/// A request and its answers in the order they were recorded: the unit of matching, of a
/// cassette file and of replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The request's identity.
    pub key: RequestKey,
    /// One interaction per answer, oldest first (polling a `queued` image until `active`).
    pub answers: Vec<Interaction>,
}

/// Groups answers into recordings by request key, keeping the first-seen order of keys and the
/// order of answers within each key. Linear in the number of answers.
pub fn group_by_key(answers: impl IntoIterator<Item = (RequestKey, Interaction)>) -> Vec<Recording> {
    let mut index: HashMap<RequestKey, usize> = HashMap::new();
    let mut recordings: Vec<Recording> = Vec::new();
    for (key, interaction) in answers {
        match index.get(&key) {
            Some(&i) => recordings[i].answers.push(interaction),
            None => {
                index.insert(key.clone(), recordings.len());
                recordings.push(Recording {
                    key,
                    answers: vec![interaction],
                });
            }
        }
    }
    recordings
}
