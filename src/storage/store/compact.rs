//! A long recording session's log, flushed off the request path: when more than [`COMPACT_AT`]
//! bytes were written to it since the last flush began (or to the journal, with `--fsync`), the
//! write that crossed the line appends the group being gathered to the log and, with
//! `--fsync`, seals the journal (renames it aside and starts an empty one): a moment under the
//! store's lock. The sync of the log and sled's flush, which bound what opening the store after
//! a crash must read and make the sealed records redundant, run without the lock, the sync on a
//! thread of its own at the lowest priority so that it takes little CPU time from requests
//! ([`in_background`]); a sealed journal is deleted once they are done. That thread's file work
//! is done in slices (`storage/sliced_io.rs`): no one system call of it keeps the CPU from the
//! server's thread for long. Until then a crash loses nothing: opening the store reads the
//! log's groups past sled's counters, and applies sealed journals (`durability::recover`).

use std::sync::atomic::AtomicBool;

use super::*;
use crate::storage::durability::note_durable;
use crate::storage::journal::sealed;

/// sled, the log's file and what is known to be on disk, shared between the store and a
/// compaction flushing in the background.
pub(super) struct Flusher {
    path: PathBuf,
    /// The log's file (see `log.rs`). Before sled's handles, so it is dropped first: dropping it
    /// gives back the disk it reserved past its end (a cut at its size, see `reservation.rs`),
    /// which must happen while this process still holds sled's lock on the store, so no other
    /// writer can have appended to it meanwhile.
    pub(super) log: LogFile,
    pub(super) db: sled::Db,
    /// sled's `meta` tree, where [`Flusher::persist`] puts the write counter.
    meta: sled::Tree,
    /// The highest write a finished sled flush covers.
    pub(super) flushed: AtomicU64,
    /// The highest write counter written to [`DURABLE_FILE`] (flushes and compactions both note
    /// it).
    noted: Mutex<u64>,
    /// How many folds emptied the log (`Store::fold_log`), counted under this lock, which also
    /// covers [`Flusher::persist`]'s writes to `meta`: where the log's groups ended before a
    /// fold is no longer where they end, and a flush that read it then does not put it there.
    pub(super) folds: Mutex<u64>,
    /// Set while a compaction's flush runs: one at a time.
    compacting: AtomicBool,
    /// Set once sled returned an error. After a write sled could not finish (a full disk) its
    /// flush can wait forever for it, and sled flushes as its handles drop: the store then lets
    /// go of them without (`close.rs`); the log's file (and with `--fsync` the journal) holds
    /// every recorded answer. Counts the errors, so a flush can tell which ones it got over
    /// ([`Flusher::healed`]).
    pub(super) failed: AtomicU64,
    /// [`Flusher::failed`] as it was when a sled flush that then succeeded began: sled got over
    /// every error up to it (whether or not the write it failed was counted).
    pub(super) healed: AtomicU64,
}

/// A compaction begun under the store's lock, for [`flush_behind`]: the write the log holds
/// up to, where its whole groups end, and the journal sealed (`--fsync`).
#[derive(Debug)]
pub(super) struct Compaction {
    generation: u64,
    log_end: LogEnd,
    sealed: Option<PathBuf>,
}

/// Where the log's whole groups end, and how many folds had emptied the log when that was read
/// (see [`Flusher::folds`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct LogEnd {
    pub(super) at: u64,
    pub(super) folds: u64,
}

impl Flusher {
    /// The flusher of the store at `path`, opened at write `generation`, with `durable` read
    /// from [`DURABLE_FILE`].
    pub(super) fn new(
        path: &Path,
        db: sled::Db,
        meta: sled::Tree,
        log: LogFile,
        generation: u64,
        durable: u64,
    ) -> Flusher {
        Flusher {
            path: path.to_owned(),
            db,
            meta,
            log,
            folds: Mutex::new(0),
            flushed: AtomicU64::new(generation),
            noted: Mutex::new(durable.max(generation)),
            compacting: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            healed: AtomicU64::new(0),
        }
    }

    /// Syncs the log's file, then puts write counter `generation` and the end of the log's
    /// whole groups `log_end` into sled's `meta` tree, ahead of sled's flush (in that order: see
    /// `durability::raise_log_counters`). Blocks for the sync.
    pub(super) fn persist(&self, generation: u64, log_end: LogEnd) -> Result<()> {
        self.log
            .sync()
            .map_err(|e| Error::io(self.log.path(), e))?;
        self.note_counters(generation, log_end)
    }

    /// The second half of [`Flusher::persist`], once the log is synced up to `log_end`: the
    /// log's end only when no fold emptied the log since it was read (see [`Flusher::folds`]).
    fn note_counters(&self, generation: u64, log_end: LogEnd) -> Result<()> {
        let folds = self.folds.lock().expect("store folds lock poisoned");
        let at = (*folds == log_end.folds).then_some(log_end.at);
        if let Err(e) = crate::storage::durability::raise_log_counters(&self.meta, generation, at) {
            self.fail();
            return Err(store_error(&self.path, e));
        }
        Ok(())
    }

    /// Notes that sled returned an error.
    pub(super) fn fail(&self) {
        self.failed.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether sled returned an error that no successful flush begun after it got over.
    pub(super) fn unhealed(&self) -> bool {
        self.failed.load(Ordering::SeqCst) > self.healed.load(Ordering::SeqCst)
    }

    /// Marks every write up to `generation` flushed, and notes it in [`DURABLE_FILE`] unless a
    /// higher one is noted already.
    pub(super) fn flushed_up_to(&self, generation: u64) {
        self.flushed.fetch_max(generation, Ordering::SeqCst);
        let mut noted = self.noted.lock().expect("store noted lock poisoned");
        if generation > *noted {
            note_durable(&self.path, generation);
            *noted = generation;
        }
    }
}

impl Store {
    /// Keeps `digests`, those of every request in the replay pack made at write `generation`
    /// with their number of answers, as what the store holds, when the store is still at that
    /// write and was opened to write (a reader never records). Later recordings are in
    /// `Session::next`, so the map is never updated; a batch write drops it.
    pub(crate) fn know_digests(
        &self,
        generation: u64,
        digests: impl Iterator<Item = ([u8; 32], u32)>,
    ) {
        if !self.writer {
            return;
        }
        let mut session = self.lock();
        if self.written.load(Ordering::SeqCst) == generation && session.next.is_empty() {
            session.known = Some(digests.collect());
        }
    }

    /// Under the session lock, after a write: when the log holds more than `compact_at` bytes
    /// written since the last flush began, or the journal (`--fsync`) is that long, and no
    /// compaction is under way, appends the group being gathered to the log, seals the journal
    /// when it holds anything, and returns the write it ends at and the sealed journal's path,
    /// for [`flush_behind`].
    pub(super) fn compact_if_long(
        &self,
        session: &mut Session,
    ) -> Result<Option<Compaction>> {
        let grown = session.journal.len().max(session.log.unflushed());
        if grown <= self.compact_at || self.flusher.compacting.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let (generation, log_end) = self.write_pending(session)?;
        let sealed = match session.journal.is_empty() {
            true => None,
            false => Some(
                (session.journal)
                    .seal(generation, self.fsync)
                    .map_err(|e| self.journal_err(e))?,
            ),
        };
        self.flusher.compacting.store(true, Ordering::SeqCst);
        Ok(Some(Compaction {
            generation,
            log_end,
            sealed,
        }))
    }

    /// Makes this store start a compaction past `bytes` instead of [`COMPACT_AT`].
    #[cfg(test)]
    pub(super) fn compacting_at(mut self, bytes: u64) -> Store {
        self.compact_at = bytes;
        self
    }
}

/// Syncs the log (up to `log_end`) and flushes sled, which then cover write `generation`, and
/// deletes the journal sealed at `sealed` (`--fsync`); in a task of its own, so neither the
/// write that started it nor any other waits. The heavy parts (the log's sync: the kernel
/// writes its pages back in the caller's thread; deleting tens of megabytes of journal) run on
/// a thread at the lowest priority ([`in_background`]), a slice at a time, so they take little CPU from
/// requests and never for long; sled's part runs at the server's (sled starts its I/O threads
/// from whichever thread hands them work, and they would keep the idle class). When any part
/// fails, the log's groups past sled's counters and the sealed journal are kept: the next open
/// reads them.
pub(super) fn flush_behind(
    flusher: std::sync::Arc<Flusher>,
    Compaction {
        generation,
        log_end,
        sealed,
    }: Compaction,
) -> tokio::task::JoinHandle<()> {
    /// Lets the next compaction start once this one is over, however it ends.
    struct Compacting(std::sync::Arc<Flusher>);
    impl Drop for Compacting {
        fn drop(&mut self) {
            self.0.compacting.store(false, Ordering::SeqCst);
        }
    }
    tokio::spawn(async move {
        let flusher = Compacting(flusher);
        let failures = flusher.0.failed.load(Ordering::SeqCst);
        let log_err = |e| Error::io(flusher.0.log.path(), e);
        let persisted = async {
            let syncing = std::sync::Arc::clone(&flusher.0);
            let synced = in_background(move || syncing.log.sync_in_slices()).await;
            let unfinished = |_| log_err(std::io::Error::other("the sync did not finish"));
            synced.map_err(unfinished)?.map_err(log_err)?;
            let noting = std::sync::Arc::clone(&flusher.0);
            tokio::task::spawn_blocking(move || noting.note_counters(generation, log_end))
                .await
                .map_err(|e| log_err(std::io::Error::other(e)))?
        };
        if let Err(e) = persisted.await {
            tracing::error!(
                store = %flusher.0.path.display(),
                error = %e,
                "cannot sync the store's log in a compaction; what it holds past the last \
                 flush (and a sealed journal) is read when the store is next opened"
            );
            return;
        }
        match flusher.0.db.flush_async().await {
            Ok(_) => {
                flusher.0.flushed_up_to(generation);
                flusher.0.healed.fetch_max(failures, Ordering::SeqCst);
                if let Some(sealed) = sealed
                    && in_background(move || delete_in_slices(&sealed)).await.is_err()
                {
                    tracing::warn!("deleting a sealed journal did not finish");
                }
            }
            Err(e) => {
                flusher.0.fail();
                tracing::error!(
                    store = %flusher.0.path.display(),
                    error = %e,
                    "cannot flush the store in a compaction; what its log holds past the last \
                     flush (and a sealed journal) is read when the store is next opened"
                )
            }
        }
    })
}

/// Runs `work` on a thread of its own, at the lowest priority ([`lowest_priority`]); the result
/// comes back through the channel returned (closed if `work` panicked). When no thread can be had,
/// `work` runs here, before this returns. A compaction syncs tens of megabytes and deletes a
/// journal as long: on a CPU shared with the server it would take the CPU from requests for
/// milliseconds at a time (record's p99 on one core, see docs/performance-history.md); nothing
/// waits for it but the session's end, which waits for it whatever its priority.
pub(super) fn in_background<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = std::sync::Arc::new(Mutex::new(Some((work, tx))));
    type Job<W, T> = Mutex<Option<(W, tokio::sync::oneshot::Sender<T>)>>;
    fn run<T, W: FnOnce() -> T>(job: &Job<W, T>) {
        let taken = job.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some((work, tx)) = taken {
            let _ = tx.send(work());
        }
    }
    let theirs = std::sync::Arc::clone(&job);
    let spawned = std::thread::Builder::new()
        .name("ims-vcr-compact".into())
        .spawn(move || {
            lowest_priority();
            run(&theirs)
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "no thread for a compaction; running it here");
        run(&job);
    }
    rx
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs when its CPU has nothing else to
/// run, and otherwise only now and then, for up to a tick (best effort: where it cannot, the
/// thread runs at the process's priority). A nice value of 19 was not enough: the server's thread
/// still lost the CPU to it for milliseconds at a time (docs/performance-history.md). Under the
/// kernel's EEVDF scheduler the class alone is not enough either: it still hands such a thread
/// the rest of a tick (4 ms at 250 Hz) now and then, so its work is cut into short system calls
/// that sleep in between (`storage/sliced_io.rs`). The class cannot be left without privileges,
/// and such a thread on a CPU other processes keep busy can wait long for its turn: nothing
/// waits for it but [`Store::flush`], which first does what the compaction was doing itself, at
/// its own priority.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: a plain system call on the calling thread (pid 0), with a valid parameter.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if set != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a compaction's priority");
        }
    }
}

/// Deletes the journals in `dir` sealed at or below write `generation` (a flush covers them).
pub(super) fn remove_sealed_upto(dir: &Path, generation: u64) {
    match sealed(dir) {
        Ok(found) => {
            for (upto, path) in found {
                if upto <= generation {
                    remove(&path);
                }
            }
        }
        Err(e) => tracing::warn!(store = %dir.display(), error = %e, "cannot list sealed journals"),
    }
}

/// Deletes a sealed journal; one already gone is fine, and one left by a failure is deleted
/// unread by the next open (the flush that came first covers it).
fn remove(path: &Path) {
    deleted(path, std::fs::remove_file(path));
}

/// [`remove`], on a thread in the idle class: the journal is cut down a slice at a time before
/// it goes (see `sliced_io.rs`). A crash part-way leaves it cut short; it began once the
/// store's counter covered the journal, so the next open deletes it unread
/// (`durability::recover`).
fn delete_in_slices(path: &Path) {
    deleted(path, crate::storage::sliced_io::delete(path));
}

fn deleted(path: &Path, result: std::io::Result<()>) {
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(journal = %path.display(), error = %e, "cannot delete a sealed journal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::journal::Journal;
    use crate::storage::store::tests::{interaction, key};

    #[tokio::test]
    async fn a_sealed_journal_a_crash_cut_short_while_deleting_it_opens_as_the_store_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let answers: Vec<_> = (0..10).map(|n| interaction(&format!("/a/{n}"), "active")).collect();
        let store = Store::open(dir.path()).unwrap();
        for answer in &answers {
            store.record(&key(answer), answer, true).await.unwrap();
        }
        store.flush().await.unwrap();
        drop(store);
        // What a compaction deleting its sealed journal a slice at a time leaves when the
        // process is killed part-way: the journal of writes the store holds, cut inside a record
        // (the store's counter covers it: deleted unread).
        let (mut journal, _) = Journal::open(dir.path(), 0).unwrap();
        for (n, answer) in answers.iter().enumerate() {
            let value = serde_json::to_vec(answer).unwrap();
            let entry = entry_key(key(answer).digest(), 0);
            journal.append(n as u64 + 1, &[] as &[&[u8]], &entry, &value).unwrap();
        }
        let sealed = journal.seal(10, false).unwrap();
        drop(journal);
        let len = std::fs::metadata(&sealed).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&sealed).unwrap().set_len(len * 2 / 3 + 5).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!((store.generation(), store.len()), (10, 10));
        for answer in &answers {
            let stored = store.answers_of(key(answer).digest()).unwrap();
            assert_eq!(stored.len(), 1, "{}", answer.request.path);
        }
        assert!(crate::storage::journal::sealed(dir.path()).unwrap().is_empty());
    }

    #[tokio::test]
    async fn background_work_runs_on_its_own_thread_in_the_idle_class_and_hands_its_result_back() {
        let seen = in_background(|| {
            let name = std::thread::current().name().map(str::to_owned);
            #[cfg(target_os = "linux")]
            // SAFETY: reads the calling thread's scheduling class.
            let idle = unsafe { libc::sched_getscheduler(0) } == libc::SCHED_IDLE;
            #[cfg(not(target_os = "linux"))]
            let idle = true;
            (name, idle)
        })
        .await
        .unwrap();
        assert_eq!(seen, (Some("ims-vcr-compact".to_owned()), true));
        // The caller's thread keeps its own class.
        #[cfg(target_os = "linux")]
        // SAFETY: reads the calling thread's scheduling class.
        assert_ne!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
    }
}
