//! A named session recorded again is replaced whole: in `record` mode, the first answer a
//! session's attempt stores (a test run, or rerun after its session was stopped) removes, in the
//! same write, every answer the session held from earlier runs and attempts, so what the session
//! holds afterwards is what this attempt recorded, as a test's cassette is rewritten when it is
//! recorded again in vcrpy or go-vcr. Without it, a test that creates an image would keep the
//! requests of every earlier run's image id, replay would name them unused
//! (`--fail-on-unused`), and the exported cassettes would grow with each refresh.
//!
//! The default session, and `auto` mode (which adds what is missing to what is there), keep
//! what they hold. A test recorded again that makes no request keeps its old recordings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Mode, Proxy, Recorder};
use crate::model::interaction::Encoded;
use crate::model::key::RequestKey;
use crate::storage::store::Store;

/// The latest attempt of each named session whose first answer in `record` mode is stored:
/// the session holds that attempt's recordings only.
#[derive(Debug, Default)]
pub(crate) struct Swept(Mutex<HashMap<String, u64>>);

impl Swept {
    fn contains(&self, session: &str, attempt: u64) -> bool {
        let swept = self.0.lock().expect("no code panics while holding the swept sessions");
        swept.get(session).is_some_and(|&latest| latest >= attempt)
    }

    fn mark(&self, session: &str, attempt: u64) {
        let mut swept = self.0.lock().expect("no code panics while holding the swept sessions");
        let latest = swept.entry(session.to_owned()).or_insert(attempt);
        *latest = (*latest).max(attempt);
    }
}

impl Proxy {
    /// Stores an answer under `key` (its key in the store) in `attempt` of its session
    /// ([`Store::record_in_attempt`]; in `record` mode it replaces the request's older answers),
    /// and, the first time a named session's attempt stores one in `record` mode, sweeps away
    /// what the session held before (see the module's documentation). Returns the answer's
    /// position among the request's stored answers, or `None` when a later attempt of its
    /// session recorded the request first.
    pub(super) async fn store_answer(
        &self,
        recorder: &Recorder,
        store: &Arc<Store>,
        key: &RequestKey,
        encoded: Encoded,
        mode: Mode,
        attempt: u64,
    ) -> crate::Result<Option<u32>> {
        let replace = mode == Mode::Record;
        let session = key.session().filter(|name| replace && !recorder.swept.contains(name, attempt));
        let Some(session) = session else {
            return store.record_in_attempt(key, encoded, replace, attempt).await;
        };
        // Every recording the session holds, the store's index built first if it is built behind.
        self.tapes.until_indexed().await;
        let sweep = self.tapes.session_stored(session);
        let Some((seq, swept)) = store.record_sweeping(key, encoded, attempt, &sweep).await? else {
            return Ok(None);
        };
        recorder.swept.mark(session, attempt);
        if !swept.is_empty() {
            tracing::info!(
                session,
                requests = swept.len(),
                "recorded again: the session's recordings of requests this run has not made were removed"
            );
            self.tapes.forget_stored(&swept);
        }
        Ok(Some(seq))
    }
}
