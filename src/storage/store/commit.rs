//! Group commit of the log (without `--fsync`): one write of a log group holding the records of
//! every answer recorded meanwhile, before any of those answers is sent.
//!
//! A recording gathers its record into the log's group under the store's lock (`Log::append`)
//! and, once the lock is let go, waits in [`Store::group_written`] until the group is in the
//! log's file. The first recording to wait writes for all: it first lets every other task that
//! is ready to run (the other connections' requests) gather theirs, then writes the group with
//! one `pwritev` and wakes the others. The guarantee: an answer is sent only once its record
//! belongs to the kernel, so a `kill -9` cannot lose it; the next open reads the groups written
//! since the last flush from the log's file (`Log::open`).
//!
//! Earlier ims-vcr wrote every record twice: to a write-ahead journal (the group commit) and,
//! 32 records at a time, to the log; two page-cache copies of the same bytes. The log is now
//! the only copy without `--fsync` (the store's format is unchanged: an earlier ims-vcr of
//! format 4 reads these groups as its own); the journal is written only with `--fsync` (each
//! record at once, then synced), and is still read as a store opens, so what a killed earlier
//! ims-vcr left there is redone as before. Under 32 connections a group holds about ten
//! records; what is left of the write's cost is the page cache's new pages, which grow with
//! the bytes (docs/performance.md).
//!
//! A failed group write poisons the store: none of its records' answers was sent; each of
//! those recordings fails, and so does every later one until the store is opened again.
//!
//! The store's readers (the log's index) see a record as soon as it is gathered. So in auto
//! mode, while the store's index is built behind serving, another client could be served a
//! recording in the moment before its group is written; a `kill -9` in that moment loses that
//! recording (its own client was never answered).

use super::*;

/// The state of the group commit, beside the store's lock.
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    /// The highest write whose record the log's file holds (or that a flush covers).
    landed: AtomicU64,
    /// Set while a recording is writing the gathered records for every waiter.
    writing: std::sync::atomic::AtomicBool,
    /// Woken when that write is done, or was given up (its recording dropped).
    written: tokio::sync::Notify,
}

impl GroupCommit {
    pub(super) fn new(generation: u64) -> GroupCommit {
        GroupCommit {
            landed: AtomicU64::new(generation),
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
    /// Writes the log's group being gathered (under the session lock): every write counted so
    /// far then belongs to the kernel. On failure the store is poisoned (see the module's
    /// documentation).
    pub(super) fn write_group(&self, session: &mut Session) -> Result<()> {
        self.refuse_if_poisoned(session, "writing")?;
        if let Err(e) = session.log.write_pending(&self.flusher.log) {
            let e = self.log_err(e);
            session.poisoned = Some(e.to_string());
            return Err(e);
        }
        (self.commit.landed).fetch_max(self.written.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(())
    }

    /// Returns once write `generation`'s record is written to the log's file, writing it (and
    /// every record gathered with it) when no other recording is.
    pub(super) async fn group_written(&self, generation: u64) -> Result<()> {
        let commit = &self.commit;
        loop {
            let written = commit.written.notified();
            let mut written = std::pin::pin!(written);
            // Registered before the checks below, so a write ending between them wakes it.
            written.as_mut().enable();
            if commit.landed.load(Ordering::SeqCst) >= generation {
                return Ok(());
            }
            if commit.writing.swap(true, Ordering::SeqCst) {
                written.await;
                continue;
            }
            let turn = Turn(commit);
            // Every task ready to run now runs (and gathers its record) before this one again.
            tokio::task::yield_now().await;
            let result = self.write_group(&mut self.lock());
            drop(turn);
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Waker};

    use super::*;
    use crate::model::key::RequestKey;
    use crate::storage::log_file::LogFile;
    use crate::storage::store::tests::{InFlight, interaction, key, logged, run_all};

    /// An answer for each of `paths`, with its key.
    fn answers(paths: &[&str]) -> Vec<(RequestKey, Interaction)> {
        let answers = paths.iter().map(|path| interaction(path, "together"));
        answers.map(|a| (key(&a), a)).collect()
    }

    /// A recording of each of `answers` in `store`, polled once in turn as a runtime runs ready
    /// tasks: each has gathered its record, the first holds the turn to write them all, and
    /// none is written yet.
    fn staged<'a>(
        store: &'a Store,
        answers: &'a [(RequestKey, Interaction)],
    ) -> Vec<InFlight<'a>> {
        let mut recordings: Vec<InFlight<'a>> = (answers.iter())
            .map(|(key, answer)| Box::pin(store.record(key, answer, true)) as InFlight<'a>)
            .collect();
        for recording in &mut recordings {
            assert!(recording.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        }
        assert!(logged_values(store.path()).is_empty());
        recordings
    }

    /// The values of the records in the log file of the store in `dir` (what another process
    /// reads there: the kernel's copy).
    fn logged_values(dir: &Path) -> Vec<Vec<u8>> {
        logged(&LogFile::open(dir).unwrap()).into_iter().map(|(_, value)| value).collect()
    }

    #[tokio::test]
    async fn recordings_made_together_share_one_log_write_and_each_returns_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Fewer than a log group, so only the group commit writes the log.
        let paths: Vec<String> = (0..20).map(|i| format!("/v2/images/{i}")).collect();
        let answers = answers(&paths.iter().map(String::as_str).collect::<Vec<_>>());
        run_all(staged(&store, &answers), |i, result| {
            result.unwrap();
            let value = serde_json::to_vec(&answers[i].1).unwrap();
            assert!(
                logged_values(dir.path()).contains(&value),
                "recording {i} returned before its record was written"
            );
        });
        let appends = store.flusher.log.appends.load(Ordering::SeqCst);
        assert_eq!(appends, 1, "one group for the 20 records");
        assert_eq!(logged_values(dir.path()).len(), 20);
        assert!(store.lock().journal.is_empty(), "no journal without --fsync");
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
        assert_eq!(logged_values(dir.path()).len(), 2);
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
        store.flusher.log.break_for_test("the disk is full");
        let mut failed = 0;
        run_all(recordings, |_, result| {
            let e = result.unwrap_err().to_string();
            assert!(e.contains("the disk is full") || e.contains("failed write"), "{e}");
            failed += 1;
        });
        assert_eq!(failed, 2);
        assert!(logged_values(dir.path()).is_empty());
        // The store takes no more recordings until it is opened again.
        let (key, answer) = &answers[0];
        let refused = store.record(key, answer, true).await.unwrap_err();
        assert!(refused.to_string().contains("restart"), "{refused}");
    }
}
