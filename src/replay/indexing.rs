//! Replay of a store whose replay pack is missing or out of date (a recorder killed with `-9`,
//! a deleted pack, a write that went around ims-vcr). Rebuilding the pack reads the whole store
//! (about 1.5 s for 100,000 recordings), so replay does not wait for it before serving: a
//! thread of its own rebuilds it, and until it is done a request not seen yet is looked up in
//! the store (one sled prefix scan; its answers are then kept in memory, as a tape read from a
//! pack keeps them).
//!
//! What needs every recording waits for the index: a miss (its nearest recordings, and the
//! second lookup as the request would have been stored when recordings are redacted, since
//! which redaction they carry is known only once all are read), the control API's stats,
//! sessions and resets, and the shutdown summary (`--fail-on-unused`). Once the pack is written
//! the store is closed, so other processes can open it, and the pack's index takes over,
//! keeping the cursors of the requests already played.
//!
//! A store that cannot be read whole (an entry that does not decode) is refused as it was when
//! the pack was rebuilt before serving, only later: the error names the entry, every request is
//! answered `500 IMS_VCR.UNREADABLE` naming it from then on, and `ims-vcr replay` exits with it
//! ([`Indexing::failure`]). A pack written but not readable back is not a failure: it is
//! deleted, and the store opened again and read whole.
//!
//! `auto` and `record` on such a store ([`Tapes::indexing_writer`]) do the same, with two
//! differences: the store stays open once the index is built (the recorder writes to it), and
//! the session may record while the pack is written. Such a pack is then not published, but it
//! still serves this session (`Store::session_pack`): what was recorded since is on the
//! session's own tapes, which take precedence over the pack's when the index is taken over.
//! `auto` forwards a request only once the index is built and still has nothing for it (its
//! redacted lookup needs the whole index too), so nothing is recorded twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::model::key::{MatchRules, RequestKey};
use crate::replay::tape::{Loaded, Sequence, Tape, TapeIndex, Tapes, index_of_pack, redaction_for};
use crate::secrets::pseudonym::PseudonymKey;
use crate::secrets::redact::Redactor;
use crate::storage::store::Store;
use crate::Error;

/// A store's index being built behind serving, shared by the tapes and the thread building it.
#[derive(Debug)]
pub(crate) struct Indexing {
    /// What requests not in the index yet are looked up in; taken (and closed) once the index
    /// is built, or failed.
    store: RwLock<Option<Arc<Store>>>,
    /// The built index, until the tapes take it over.
    built: Mutex<Option<Built>>,
    /// Set once the index is built (`Ok`) or cannot be (`Err`, the message serving repeats),
    /// the store closed either way.
    outcome: OnceLock<std::result::Result<(), String>>,
    /// The error itself, for the first to ask ([`Indexing::failure`], or shutdown).
    error: Mutex<Option<Error>>,
    /// The tapes took the built index over, or there is none to take: nothing left to check on
    /// the request path.
    merged: AtomicBool,
    /// Wakes those awaiting `outcome`.
    changed: tokio::sync::Notify,
    /// The store is a writer's, shared with its recorder: it stays open once the index is
    /// built, and is read whole in place when the pack does not read back.
    writer: bool,
}

#[derive(Debug)]
struct Built {
    index: TapeIndex,
    redactor: Option<Redactor>,
}

impl Tapes {
    /// Tapes for replay of `store`, served at once: its index is built behind, on a thread of
    /// its own (see the module's documentation). `key` is the redaction key incoming requests
    /// are redacted with when the recordings turn out to be redacted with it.
    pub(crate) fn indexing(
        store: Store,
        rules: MatchRules,
        sequence: Sequence,
        key: PseudonymKey,
    ) -> Tapes {
        Self::indexing_after(Arc::new(store), false, rules, sequence, key, || {})
    }

    /// [`Tapes::indexing`] for `auto` and `record`: `store` is also the recorder's, and stays
    /// open (see the module's documentation).
    pub(crate) fn indexing_writer(
        store: Arc<Store>,
        rules: MatchRules,
        sequence: Sequence,
        key: PseudonymKey,
    ) -> Tapes {
        Self::indexing_after(store, true, rules, sequence, key, || {})
    }

    /// [`Tapes::indexing`], the index built once `first` returned (tests hold it back).
    fn indexing_after(
        store: Arc<Store>,
        writer: bool,
        rules: MatchRules,
        sequence: Sequence,
        key: PseudonymKey,
        first: impl FnOnce() + Send + 'static,
    ) -> Tapes {
        let indexing = Arc::new(Indexing {
            store: RwLock::new(Some(store.clone())),
            built: Mutex::new(None),
            outcome: OnceLock::new(),
            error: Mutex::new(None),
            merged: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            writer,
        });
        let behind = (indexing.clone(), store.clone(), rules.clone(), key.clone());
        let spawned = std::thread::Builder::new()
            .name("ims-vcr-index".into())
            .spawn(move || {
                let (indexing, store, rules, key) = behind;
                let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    first();
                    indexing.build(store, &rules, sequence, key);
                }));
                if unwound.is_err() {
                    indexing.panicked();
                }
            });
        if let Err(e) = spawned {
            // No thread to be had: the index is built here, before serving, as it used to be.
            tracing::debug!(error = %e, "building the replay index on this thread");
            indexing.build(store, &rules, sequence, key);
        } else {
            drop(store);
        }
        Tapes {
            tapes: Default::default(),
            searching: Default::default(),
            sequence,
            stamps: Vec::new(),
            redactor: OnceLock::new(),
            indexing: Some(indexing),
        }
    }

    /// Every recording of `store`, read whole and prepared: what replay falls back to when the
    /// store's replay pack cannot be written.
    pub(crate) fn read_whole(
        store: &Store,
        rules: &MatchRules,
        sequence: Sequence,
    ) -> crate::Result<Tapes> {
        Tapes::new(&store.load(rules)?, sequence).map_err(Error::Recordings)
    }

    /// True while a store's index is built behind serving (until the tapes took it over, or it
    /// failed).
    pub(crate) fn is_indexing(&self) -> bool {
        self.indexing
            .as_ref()
            .is_some_and(|indexing| !indexing.merged.load(Ordering::Acquire))
    }

    /// Waits, without blocking the runtime, until a store's index being built behind serving is
    /// built (and taken over) or failed. Returns at once otherwise.
    pub(crate) async fn until_indexed(&self) {
        if let Some(indexing) = &self.indexing {
            indexing.finished().await;
            self.merge_if_built();
        }
    }

    /// Why the store's index could not be built, if it could not: every request is answered
    /// with it.
    pub(crate) fn indexing_failure(&self) -> Option<&str> {
        match self.indexing.as_ref()?.outcome.get()? {
            Ok(()) => None,
            Err(why) => Some(why),
        }
    }

    /// What was indexed behind serving, for the server to wait on (shutdown, a failure).
    pub(crate) fn indexing_handle(&self) -> Option<Arc<Indexing>> {
        self.indexing.clone()
    }

    /// Takes the built index over, once it is built: the requests already looked up in the
    /// store keep their tapes (and cursors); the pack's index brings the rest.
    pub(super) fn merge_if_built(&self) {
        let Some(indexing) = &self.indexing else {
            return;
        };
        if indexing.merged.load(Ordering::Acquire) {
            return;
        }
        // Held through the swap: a lookup that finds the store gone waits here, then sees the
        // whole index.
        let mut built = indexing.built.lock().expect("no code panics while holding the built index");
        match built.take() {
            Some(Built { mut index, redactor }) => {
                if let Some(redactor) = redactor {
                    let _ = self.redactor.set(redactor);
                }
                let mut tapes = self.write();
                index.extend(std::mem::take(&mut *tapes));
                *tapes = index;
                indexing.merged.store(true, Ordering::Release);
            }
            None if indexing.outcome.get().is_some() => indexing.merged.store(true, Ordering::Release),
            None => {}
        }
    }

    /// A request not in the index while it is being built: its answers read from the store and
    /// prepared, kept as a tape. `None` when the store has none.
    pub(super) fn play_from_store(&self, key: &RequestKey) -> std::result::Result<Option<Arc<Tape>>, String> {
        let indexing = self.indexing.as_ref().expect("called only while indexing");
        let Some(store) = indexing.store() else {
            // The pack is written and the store closed: the index has the request or nobody
            // does, once it is made; until then this is a miss, which waits for it
            // (`Proxy::replay`).
            self.merge_if_built();
            return Ok(self.read_now().get(key.digest()).cloned());
        };
        let interactions = store.answers_of(key.digest()).map_err(|e| e.to_string())?;
        if interactions.is_empty() {
            return Ok(None);
        }
        let loaded = Loaded::of(&interactions, interactions.len(), store.path(), key.request_line())?;
        let tape = Arc::new(Tape::eager(key, loaded.request, loaded.answers, 0));
        // Another lookup of the same request, or the built index, may have put it there first.
        Ok(Some(self.write().get_or_insert_with(*key.digest(), || tape).clone()))
    }
}

impl Indexing {
    /// Builds the index (writing the replay pack) and hands it over. The store is closed as
    /// soon as the pack is written, before its index is read and the tapes made from it, so
    /// sled's pages and the index are not in memory together; a request not seen yet meanwhile
    /// waits for the index.
    fn build(&self, store: Arc<Store>, rules: &MatchRules, sequence: Sequence, key: PseudonymKey) {
        let path = store.path().to_owned();
        // A writer's store stays open: read whole in place should its pack not read back.
        let writer_store = self.writer.then(|| store.clone());
        let published = match self.writer {
            true => store.session_pack(),
            false => store.published_pack(),
        };
        let (index, stamps) = match published {
            Ok(Some(published)) => {
                self.close(store);
                // Read once sled's pages are handed back, not on top of them.
                match published.read() {
                    Ok(pack) => {
                        let index = index_of_pack(pack);
                        // The pack's own index, moved into the tapes, leaves holes behind.
                        crate::storage::store::close::release_freed_memory();
                        Ok(index)
                    }
                    // Written but not readable back (it is deleted): the store is opened again
                    // and read whole, as when a pack cannot be written.
                    Err(why) => {
                        tracing::warn!("{why}; reading the whole store instead");
                        match &writer_store {
                            Some(store) => Self::read_whole(store, rules, sequence),
                            None => Store::open_existing(&path)
                                .and_then(|store| Self::read_whole(&store, rules, sequence)),
                        }
                    }
                }
            }
            // The pack cannot be written: the recordings are read whole.
            Ok(None) => {
                let read = Self::read_whole(&store, rules, sequence);
                self.close(store);
                read
            }
            Err(e) => {
                self.close(store);
                Err(e)
            }
        }
        .map_or_else(|e| (Err(e), Vec::new()), |(index, stamps)| (Ok(index), stamps));
        let outcome = match index {
            Ok(index) => {
                tracing::info!(requests = index.len(), store = %path.display(), "recordings loaded");
                let (redactor, warning) = redaction_for(&stamps, key);
                if let Some(warning) = warning {
                    tracing::warn!("{warning}");
                }
                *self.built.lock().expect("no code panics while holding the built index") =
                    Some(Built { index, redactor });
                Ok(())
            }
            Err(e) => {
                // Said once, by whoever takes the error (`ims-vcr replay` exits with it) and in
                // every answer from now on.
                tracing::debug!(error = %e, "cannot replay this store");
                let why = e.to_string();
                *self.error.lock().expect("no code panics while holding the indexing error") = Some(e);
                Err(why)
            }
        };
        let _ = self.outcome.set(outcome);
        self.changed.notify_waiters();
    }

    /// After a panic while building: whatever was not done is failed, so no one waits forever
    /// (the store is closed when the last lookup holding it lets go).
    fn panicked(&self) {
        drop(self.take_store());
        let why = "the replay index could not be built: its thread panicked (see the log)";
        if self.outcome.set(Err(why.to_owned())).is_ok() {
            *self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Error::Internal(why.to_owned()));
        }
        self.changed.notify_waiters();
    }

    /// Every recording of `store`, read and prepared: the index, and the redaction stamps.
    fn read_whole(
        store: &Store,
        rules: &MatchRules,
        sequence: Sequence,
    ) -> crate::Result<(TapeIndex, Vec<crate::secrets::redact::RedactionStamp>)> {
        let tapes = Tapes::read_whole(store, rules, sequence)?;
        // Just built: nothing else holds the index.
        let index = std::mem::take(&mut *tapes.write());
        Ok((index, tapes.stamps))
    }

    /// Stops lookups going to the store and closes it once the last one under way lets go (a
    /// writer's store only lets go of it: its recorder keeps it open).
    fn close(&self, store: Arc<Store>) {
        drop(self.take_store());
        if self.writer {
            return;
        }
        let mut store = store;
        let store = loop {
            match Arc::try_unwrap(store) {
                Ok(store) => break store,
                Err(shared) => {
                    store = shared;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        };
        drop(store);
    }

    fn store(&self) -> Option<Arc<Store>> {
        self.store.read().expect("no code panics while holding the indexing store").clone()
    }

    fn take_store(&self) -> Option<Arc<Store>> {
        self.store.write().expect("no code panics while holding the indexing store").take()
    }

    /// Blocks until the index is built or failed (for what needs every recording and cannot
    /// await).
    pub(super) fn wait(&self) {
        self.outcome.wait();
    }

    /// Waits until the index is built or failed, and the store closed (the outcome is set
    /// after it is): at shutdown, so the process does not end with the store open.
    pub(crate) async fn finished(&self) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.outcome.get().is_some() {
                return;
            }
            changed.await;
        }
    }

    /// Resolves, with the error, only if the index cannot be built: `ims-vcr replay` exits with
    /// it. `None` when another caller took the error already.
    pub(crate) async fn failure(&self) -> Option<Error> {
        self.finished().await;
        match self.outcome.get() {
            Some(Err(_)) => self.take_error(),
            _ => std::future::pending().await,
        }
    }

    /// The error the index failed with, for the first to ask.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.lock().expect("no code panics while holding the indexing error").take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::snapshot::PACK_FILE;
    use crate::storage::snapshot::tests::{default_key, plays, recording, sample, store_with};

    /// Tapes indexing `store` once the returned sender sends (or is dropped).
    fn held_back(store: Store, sequence: Sequence) -> (Tapes, std::sync::mpsc::Sender<()>) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let rules = store.rules().unwrap();
        let tapes = Tapes::indexing_after(Arc::new(store), false, rules, sequence, default_key(), move || {
            let _ = wait.recv();
        });
        (tapes, go)
    }

    #[tokio::test]
    async fn a_store_is_served_before_its_index_is_built_and_the_index_keeps_the_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let _ = std::fs::remove_file(dir.path().join(PACK_FILE));
        let (tapes, go) = held_back(store, Sequence::Cycle);
        // Served from the store while the index is held back.
        assert_eq!(
            plays(&tapes, "/v2/images/a", 2),
            [r#"{"status":"queued"}"#, r#"{"status":"saving"}"#]
        );
        assert_eq!(plays(&tapes, "/v2/images/zz", 1), ["miss"]);
        assert!(tapes.is_indexing());
        // Which redaction the recordings carry is not known until all are read.
        assert!(tapes.redactor().is_none());

        drop(go);
        tapes.until_indexed().await;
        assert!(!tapes.is_indexing());
        // The cursor of the request played from the store is kept (a new tape would start
        // over at `queued`); the others come from the rebuilt pack.
        assert_eq!(
            plays(&tapes, "/v2/images/a", 2),
            [r#"{"status":"active"}"#, r#"{"status":"queued"}"#]
        );
        assert_eq!(plays(&tapes, "/v2/images/c", 1), [r#"{"status":"deleted"}"#]);
        let stats = tapes.stats();
        assert_eq!(stats.len(), 3);
        assert_eq!(stats[0].played_total, 4);
        assert!(stats[1].unused() && !stats[2].unused());
        // `b` is redacted with the default key: incoming requests are redacted to match it.
        assert!(tapes.redactor().is_some());
        assert!(tapes.indexing_failure().is_none());

        // The pack is written and the store let go of: another process may open it.
        tapes.indexing_handle().unwrap().finished().await;
        assert!(dir.path().join(PACK_FILE).is_file());
        drop(Store::open_existing(dir.path()).unwrap());
    }

    #[tokio::test]
    async fn a_writer_serves_and_records_before_its_index_is_built_and_keeps_the_store_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store_with(dir.path(), &sample()).await);
        let _ = std::fs::remove_file(dir.path().join(PACK_FILE));
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let rules = store.rules().unwrap();
        let tapes =
            Tapes::indexing_after(store.clone(), true, rules, Sequence::RepeatLast, default_key(), move || {
                let _ = wait.recv();
            });
        assert_eq!(plays(&tapes, "/v2/images/a", 1), [r#"{"status":"queued"}"#]);
        // The session records while the index is held back (as `record` does: a new answer
        // replaces `c`'s), and tells the tapes.
        let again = recording("/v2/images/c", &["restored"], false);
        let seq = store.record(&again.key, &again.answers[0], true).await.unwrap();
        tapes.record_stored(&again.key, &again.key, &store, seq, || false);

        drop(go);
        tapes.until_indexed().await;
        assert!(!tapes.is_indexing() && tapes.indexing_failure().is_none());
        assert_eq!(plays(&tapes, "/v2/images/a", 1), [r#"{"status":"saving"}"#]);
        assert_eq!(plays(&tapes, "/v2/images/c", 1), [r#"{"status":"restored"}"#]);
        assert_eq!(plays(&tapes, "/v2/images/b", 1), [r#"{"status":"active"}"#]);
        // The store is still the recorder's: open, and writable.
        tapes.indexing_handle().unwrap().finished().await;
        let more = recording("/v2/images/d", &["active"], false);
        store.record(&more.key, &more.answers[0], true).await.unwrap();
        assert_eq!(store.answers_of(more.key.digest()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn what_reads_every_recording_waits_for_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let recordings: Vec<_> = (0..200)
            .map(|n| recording(&format!("/v2/images/{n:04}"), &["active"], false))
            .collect();
        let store = store_with(dir.path(), &recordings).await;
        let _ = std::fs::remove_file(dir.path().join(PACK_FILE));
        let (tapes, go) = held_back(store, Sequence::RepeatLast);
        assert_eq!(plays(&tapes, "/v2/images/0007", 1), [r#"{"status":"active"}"#]);
        let released = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(go);
        });
        // Blocks until the index is built: never a partial list.
        assert_eq!(tapes.len(), 200);
        let stats = tapes.stats();
        assert_eq!(stats.iter().filter(|s| s.unused()).count(), 199);
        let near = tapes.nearest(&recording("/v2/images/0008x", &[], false).key, 1);
        assert_eq!(near[0].line(), "GET /v2/images/0008");
        released.join().unwrap();
        tapes.indexing_handle().unwrap().finished().await;
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_read_whole_fails_its_index_naming_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with(dir.path(), &sample()).await);
        let _ = std::fs::remove_file(dir.path().join(PACK_FILE));
        let entry = crate::storage::store::tests::garble_first_entry(dir.path());
        let store = Store::open_existing(dir.path()).unwrap();
        let (tapes, go) = held_back(store, Sequence::RepeatLast);
        // Before the damage is found, the other requests are served from the store.
        let paths = ["/v2/images/a", "/v2/images/b", "/v2/images/c"];
        let served = paths.iter().filter(|path| !plays(&tapes, path, 1)[0].starts_with("unreadable"));
        assert_eq!(served.count(), 2);
        drop(go);
        tapes.until_indexed().await;
        let why = tapes.indexing_failure().expect("the index fails").to_owned();
        assert!(why.contains(&format!("entry {entry} is corrupt")), "{why}");
        // Every request is then answered with it, recorded or not.
        for path in paths.iter().chain(&["/v2/images/zz"]) {
            assert_eq!(plays(&tapes, path, 1), [format!("unreadable: {why}")], "{path}");
        }
        let indexing = tapes.indexing_handle().unwrap();
        indexing.finished().await;
        assert!(matches!(indexing.take_error(), Some(Error::StoreCorrupt { .. })));
        assert!(indexing.take_error().is_none(), "the error is given once");
        drop(Store::open_existing(dir.path()).unwrap());
    }

    #[tokio::test]
    async fn a_store_whose_pack_cannot_be_written_is_read_whole_behind_serving() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        // A directory where the pack goes: it can be neither read nor replaced.
        std::fs::create_dir(dir.path().join(PACK_FILE)).unwrap();
        let (tapes, go) = held_back(store, Sequence::RepeatLast);
        assert_eq!(plays(&tapes, "/v2/images/c", 1), [r#"{"status":"deleted"}"#]);
        drop(go);
        tapes.until_indexed().await;
        assert!(tapes.indexing_failure().is_none());
        assert_eq!(tapes.stats().len(), 3);
        assert_eq!(plays(&tapes, "/v2/images/a", 1), [r#"{"status":"queued"}"#]);
        assert!(tapes.redactor().is_some());
        tapes.indexing_handle().unwrap().finished().await;
        drop(Store::open_existing(dir.path()).unwrap());
    }

    #[tokio::test]
    async fn a_panic_building_the_index_fails_it_and_lets_go_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let rules = store.rules().unwrap();
        let tapes = Tapes::indexing_after(Arc::new(store), false, rules, Sequence::RepeatLast, default_key(), || {
            panic!("a bug while indexing")
        });
        tapes.until_indexed().await;
        let why = tapes.indexing_failure().expect("the index fails").to_owned();
        assert!(why.contains("panicked"), "{why}");
        assert_eq!(plays(&tapes, "/v2/images/a", 1), [format!("unreadable: {why}")]);
        let indexing = tapes.indexing_handle().unwrap();
        indexing.finished().await;
        assert!(matches!(indexing.take_error(), Some(Error::Internal(_))));
        drop(Store::open_existing(dir.path()).unwrap());
    }
}
