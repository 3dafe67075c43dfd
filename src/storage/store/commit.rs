//! Group commit of the journal (without `--fsync`): one `write(2)` for the records of every
//! answer recorded meanwhile, written before any of those answers is sent.
//!
//! A recording stages its journal record under the store's lock ([`Journal::stage`]) and, once
//! the lock is let go, waits in [`Store::journaled`] until the record is written. The first
//! recording to wait writes for all: it first lets every other task that is ready to run (the
//! other connections' requests) stage theirs, then writes the staged records with one `write(2)`
//! and wakes the others. A `write(2)` per record was about a tenth of what recording a request
//! cost; with groups (about 8 records under 32 connections) record serves 4-8 % more per CPU
//! second, and what is left is the page cache's new pages, which grow with the bytes
//! (docs/performance.md). The guarantee is kept: an answer is sent only once its record belongs
//! to the kernel, so a `kill -9` cannot lose it.
//!
//! The journal also holds a record before the log's file does: a group of the log is written
//! only after the journal's staged records ([`Store::record_in_attempt`], a flush or seal
//! through `write_pending`, and `fold_log`). A failed journal write poisons the store: the log
//! gathered records the journal does not hold, and none of their answers was sent; each of
//! those recordings fails, and so does every later one until the store is opened again. A
//! record of [`WRITTEN_AT_ONCE`] bytes or more is not staged: it is written at once, after the
//! records staged before it.
//!
//! The store's readers (the log's index) see a record as soon as it is staged, as they saw it
//! once written before. So in auto mode, while the store's index is built behind serving,
//! another client could be served a recording in the moment before its `write(2)`; a `kill -9`
//! in that moment loses that recording (its own client was never answered).
//!
//! [`Journal::stage`]: crate::storage::journal::Journal::stage

use super::*;

/// Journal records this long or longer are written at once rather than staged (copied).
pub(super) const WRITTEN_AT_ONCE: usize = 256 * 1024;

/// The state of the group commit, beside the store's lock.
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    /// The highest write whose journal record is written (or that a flush covers).
    journaled: AtomicU64,
    /// Set while a recording is writing the staged records for every waiter.
    writing: std::sync::atomic::AtomicBool,
    /// Woken when that write is done, or was given up (its recording dropped).
    written: tokio::sync::Notify,
}

impl GroupCommit {
    pub(super) fn new(generation: u64) -> GroupCommit {
        GroupCommit {
            journaled: AtomicU64::new(generation),
            ..GroupCommit::default()
        }
    }
}

/// The turn of the recording writing for every waiter: given back when dropped, also when its
/// request is dropped while it lets others stage theirs, so that a waiter takes it over.
struct Turn<'a>(&'a GroupCommit);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.writing.store(false, Ordering::SeqCst);
        self.0.written.notify_waiters();
    }
}

impl Store {
    /// Writes the journal's staged records (under the session lock), which then hold every
    /// write counted so far. On failure the store is poisoned (see the module's documentation).
    pub(super) fn write_journal(&self, session: &mut Session) -> Result<()> {
        self.refuse_if_poisoned(session, "writing")?;
        if let Err(e) = session.journal.write_staged() {
            let e = self.journal_err(e);
            session.poisoned = Some(e.to_string());
            return Err(e);
        }
        (self.commit.journaled).fetch_max(self.written.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(())
    }

    /// Returns once write `generation`'s journal record is written, writing it (and every
    /// record staged with it) when no other recording is.
    pub(super) async fn journaled(&self, generation: u64) -> Result<()> {
        let commit = &self.commit;
        loop {
            let written = commit.written.notified();
            let mut written = std::pin::pin!(written);
            // Registered before the checks below, so a write ending between them wakes it.
            written.as_mut().enable();
            if commit.journaled.load(Ordering::SeqCst) >= generation {
                return Ok(());
            }
            if commit.writing.swap(true, Ordering::SeqCst) {
                written.await;
                continue;
            }
            let turn = Turn(commit);
            // Every task ready to run now runs (and stages its record) before this one again.
            tokio::task::yield_now().await;
            let result = self.write_journal(&mut self.lock());
            drop(turn);
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::model::key::RequestKey;
    use crate::storage::journal::Journal;
    use crate::storage::store::tests::{interaction, key};

    type Recording<'a> = Pin<Box<dyn Future<Output = Result<u32>> + 'a>>;

    /// An answer for each of `paths`, with its key.
    fn answers(paths: &[&str]) -> Vec<(RequestKey, Interaction)> {
        let answers = paths.iter().map(|path| interaction(path, "together"));
        answers.map(|a| (key(&a), a)).collect()
    }

    /// A recording of each of `answers` in `store`, polled once in turn as a runtime runs ready
    /// tasks: each has staged its record, the first holds the turn to write them all, and none
    /// is written yet.
    fn staged<'a>(
        store: &'a Store,
        answers: &'a [(RequestKey, Interaction)],
    ) -> Vec<Recording<'a>> {
        let mut recordings: Vec<Recording<'a>> = (answers.iter())
            .map(|(key, answer)| Box::pin(store.record(key, answer, true)) as Recording<'a>)
            .collect();
        for recording in &mut recordings {
            assert!(recording.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        }
        assert!(journaled_values(store.path()).is_empty());
        recordings
    }

    /// Polls `recordings` in turn until each is done, passing each result to `done` (with its
    /// index) as it comes.
    fn run_all(mut recordings: Vec<Recording<'_>>, mut done: impl FnMut(usize, Result<u32>)) {
        let mut left: Vec<usize> = (0..recordings.len()).collect();
        for round in 0.. {
            assert!(round < 10, "recordings {left:?} still waiting");
            left.retain(|&i| {
                let mut cx = Context::from_waker(Waker::noop());
                match recordings[i].as_mut().poll(&mut cx) {
                    Poll::Ready(result) => {
                        done(i, result);
                        false
                    }
                    Poll::Pending => true,
                }
            });
            if left.is_empty() {
                return;
            }
        }
    }

    /// The values of the records in the journal file of the store in `dir`.
    fn journaled_values(dir: &Path) -> Vec<Vec<u8>> {
        let records = Journal::open(dir, 0).unwrap().1.unwrap();
        records.into_iter().map(|r| r.value).collect()
    }

    #[tokio::test]
    async fn recordings_made_together_share_one_journal_write_and_each_returns_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Fewer than a log group, so only the group commit writes the journal.
        let paths: Vec<String> = (0..20).map(|i| format!("/v2/images/{i}")).collect();
        let answers = answers(&paths.iter().map(String::as_str).collect::<Vec<_>>());
        run_all(staged(&store, &answers), |i, result| {
            result.unwrap();
            let value = serde_json::to_vec(&answers[i].1).unwrap();
            assert!(
                journaled_values(dir.path()).contains(&value),
                "recording {i} returned before its journal record was written"
            );
        });
        assert_eq!(store.lock().journal.writes, 1, "one write(2) for the 20 records");
        assert_eq!(journaled_values(dir.path()).len(), 20);
    }

    #[tokio::test]
    async fn a_recording_dropped_while_it_writes_for_others_leaves_the_write_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let answers = answers(&["/dropped", "/kept"]);
        let mut recordings = staged(&store, &answers);
        // The first one's client went away: the second writes both records.
        drop(recordings.remove(0));
        run_all(recordings, |_, result| {
            result.unwrap();
        });
        assert_eq!(journaled_values(dir.path()).len(), 2);
        // The dropped recording is stored too (its answer was never sent): nothing half-written.
        store.flush().await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn when_the_write_for_all_fails_every_recording_in_it_fails_and_none_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let answers = answers(&["/lost", "/lost-too"]);
        let recordings = staged(&store, &answers);
        store.lock().journal.break_for_test("the disk is full");
        let mut failed = 0;
        run_all(recordings, |_, result| {
            let e = result.unwrap_err().to_string();
            assert!(e.contains("the disk is full") || e.contains("failed write"), "{e}");
            failed += 1;
        });
        assert_eq!(failed, 2);
        assert!(journaled_values(dir.path()).is_empty());
        // The store takes no more recordings until it is opened again.
        let (key, answer) = &answers[0];
        let refused = store.record(key, answer, true).await.unwrap_err();
        assert!(refused.to_string().contains("restart"), "{refused}");
    }
}
