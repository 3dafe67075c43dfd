//! The sled-backed recording store: key layout, atomic writes, group-committed durability, and
//! loading everything back for replay or export.
//!
//! Layout: tree `answers` maps `digest (32 bytes) ++ sequence (u32, big-endian)` to the JSON of
//! one [`Interaction`], so a prefix scan yields a request's answers in recorded order; the log
//! file ([`LOG_FILE`](crate::storage::log_file::LOG_FILE)) holds what recording wrote since, in
//! groups of journal records applied over `answers` (see [`log`]); tree `meta` holds the store
//! format, the match rules and the write counter (`generation`).
//!
//! Durability: a recorded answer goes to the log's file before its client is answered (one
//! group for the answers recorded meanwhile, see `commit.rs`; with `--fsync`, to the
//! [`journal`](crate::storage::journal) at once and a group-committed `fdatasync` of it);
//! opening the store reads what sled's counters do not cover yet.
//!
//! Damage detection: after each flush, the number of the last write known to be on disk goes into
//! the file [`DURABLE_FILE`] beside sled's own. sled recovers a prefix of its log and silently
//! drops everything after a truncated or garbled spot, so a store that reopens with a lower write
//! counter than that file lost flushed recordings, and is refused instead of served short.

pub(crate) mod close;
mod commit;
mod compact;
mod import;
mod load;
mod log;
mod overlay;
mod rules;
mod upgrade;
pub(crate) use log::Log as LogState;
#[cfg_attr(not(any(test, feature = "internals")), allow(unused_imports))]
pub use import::Imported;

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::model::digest_map::DigestMap;
use crate::model::interaction::{Encoded, Interaction};
use crate::model::recording::Recording;
use crate::storage::folder;
use crate::storage::journal::{COMPACT_AT, Journal};
use crate::storage::durability::{open_db, read_durable, recover, store_error};
use compact::Flusher;
pub use crate::storage::durability::DURABLE_FILE;
use crate::storage::layout::{Entry, GENERATION_KEY, LOG_END_KEY, entry_key};
use crate::model::key::{MatchRules, RequestKey, hex};
use crate::storage::log_file::{LOG_FILE, LogFile};

/// Version of the store layout; bumped when the key or value encoding changes. Format 2 added
/// the log, in sled's `log` tree; format 3 moved it to a file of its own
/// ([`LogFile`](crate::storage::log_file::LogFile)); format 4 checks each journal and log record
/// with a CRC-32 instead of a SHA-256 (see `journal.rs`; both are read). A format-1 store is read
/// as it is (its log is empty) and becomes format 4 when a writer opens it; a format-2 store's
/// log moves to the file as any ims-vcr opens it ([`upgrade::adopt_log_tree`]); a format-3 store
/// is read as it is and becomes format 4 when a writer opens it or a journal is left in it to
/// redo (its records may then be of either kind; see [`mark_format`]). Either way an older
/// ims-vcr, which would not see the log or would take the new records for damage, refuses the
/// store instead of serving it short.
const STORE_FORMAT: u32 = 4;
/// The formats this ims-vcr reads.
const READS_FORMATS: [u32; 4] = [1, 2, 3, 4];

/// An open store. One process at a time (sled holds an exclusive lock).
pub struct Store {
    path: PathBuf,
    /// sled's handles: dropped first when the store closes (see `close.rs`).
    answers: ManuallyDrop<sled::Tree>,
    meta: ManuallyDrop<sled::Tree>,
    /// What one write at a time may touch. Held only around synchronous calls (sled, one
    /// write to the log or the journal), never across an await; it also orders the write
    /// counter.
    session: Mutex<Session>,
    /// sled, the log's file and the flush marks, shared with a compaction flushing in the
    /// background.
    flusher: ManuallyDrop<std::sync::Arc<Flusher>>,
    /// Set once every entry was read (a pack rebuild, an export): closing the store then hands
    /// the memory sled took back to the system.
    read_whole: std::sync::atomic::AtomicBool,
    /// Bytes of log (or journal) written since the last flush past which a write starts a
    /// compaction ([`COMPACT_AT`]; less in tests).
    compact_at: u64,
    /// The last compaction's flush, awaited by [`Store::flush`].
    behind: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether a recorded answer waits for an `fdatasync` of the journal (`--fsync`).
    fsync: bool,
    /// Opened to record or import ([`Store::open`]), not only to read.
    writer: bool,
    /// sled's write counter as it opened (before the journal's redone writes): sled's snapshot
    /// covers writes up to it, and a close at another counter refreshes the snapshot (`close.rs`).
    opened_at: u64,
    /// Group commit: the write counter (persisted as `meta/generation`, so it keeps growing
    /// across sessions) and the highest write a finished journal sync covers (the highest a
    /// sled flush covers is [`Flusher::flushed`]).
    written: AtomicU64,
    synced: AtomicU64,
    /// Without `--fsync`: the writes whose records the log's file holds (see `commit.rs`).
    commit: commit::GroupCommit,
    /// Serialises flushes and syncs; writers queue here, and the first through syncs for all.
    flush_lock: tokio::sync::Mutex<()>,
    /// Set once the open succeeded (its format is one this ims-vcr reads): only such a store
    /// leaves the note of a clean close (`storage::closed`).
    opened: bool,
    /// The store folder's device and inode as opened (see [`Store::folder_gone`]).
    folder: Option<(u64, u64)>,
}

/// The state writes share under [`Store::session`].
struct Session {
    /// Next sequence number per request digest recorded in this session, and the attempt of its
    /// named session that recorded it. A digest absent here has not been recorded yet this
    /// session, so its first answer replaces any older ones.
    next: DigestMap<Next>,
    journal: Journal,
    /// Recordings gathered into groups for the log's file, and its index.
    log: log::Log,
    /// Whether the replay pack was deleted since it was last written: the first write after
    /// that deletes it, so a pack never outlives a change it does not hold (a crash can leave
    /// sled holding writes its persisted counter does not show, and the pack is matched by
    /// that counter).
    pack_dropped: bool,
    /// Set when a write failed after its record was counted (a failed write of a log group:
    /// none of its answers was sent; or a failed sled write after it), so this process must not
    /// reuse its number; what was written is read when the store is next opened.
    poisoned: Option<String>,
    /// Every request digest the store held when its current replay pack was opened, with its
    /// number of answers (a writer only, see [`Store::know_digests`]), so a recording finds
    /// what a request has without reading the store. `None`: read it. Batch writes (import,
    /// new match rules) drop it; [`Session::next`] covers what this session recorded.
    known: Option<DigestMap<u32>>,
    /// The latest attempt of each named session whose first answer swept what the session
    /// held ([`Store::record_sweeping`]): an answer of an earlier attempt, still in flight then,
    /// is not stored after it.
    swept: std::collections::HashMap<String, u64>,
}

/// Where a request's next answer goes in this session (see [`Store::record_in_attempt`]).
#[derive(Clone, Copy, Debug)]
struct Next {
    seq: u32,
    /// The attempt of the request's named session that recorded it so far.
    attempt: u64,
}

/// The store's format as `meta` records it (`None`: a new store, which gets [`STORE_FORMAT`] as
/// it is opened to write), refused when it is not one of [`READS_FORMATS`]. A format-1 store
/// stays format 1 until its log holds something (see [`STORE_FORMAT`]).
fn read_format(path: &Path, meta: &sled::Tree) -> Result<Option<u32>> {
    let Some(v) = meta.get("format").map_err(|e| store_error(path, e))? else {
        return Ok(None);
    };
    let format = <[u8; 4]>::try_from(v.as_ref()).map(u32::from_be_bytes);
    match format {
        Ok(n) if READS_FORMATS.contains(&n) => Ok(Some(n)),
        // A number when it reads as one (a newer ims-vcr's format), else the bytes (damage).
        _ => Err(Error::StoreRefused(format!(
            "store {} has format {}, this ims-vcr reads formats {READS_FORMATS:?}; export it \
             with the ims-vcr that wrote it and import the cassettes here",
            path.display(),
            format.map_or_else(|_| format!("{:?} (not a format number)", v.as_ref()), |n| n.to_string())
        ))),
    }
}

/// Marks the store at `path` with this ims-vcr's format, on the disk, before anything written in
/// it can be: the records of a writer's journal, and those a redo of a crashed session's journal
/// writes to the log, are format 4's (CRC-32), which an older ims-vcr would take for damage, and
/// a store whose log holds anything must be refused by one from before the log (format 1). So
/// the store is marked when it is new, when a writer opens it, when a journal is left to redo,
/// and (format 1 or 2) when its log holds anything; a reader with nothing to redo leaves a
/// format-1, -2 or -3 store as it is. Read again here: moving a format-2 log has marked it.
fn mark_format(
    path: &Path,
    db: &sled::Db,
    meta: &sled::Tree,
    writer: bool,
    log: &log::Log,
) -> Result<()> {
    let format = read_format(path, meta)?;
    let redo = writer
        || crate::storage::journal::any_left(path).map_err(|e| Error::io(path, e))?;
    let mark = match format {
        None => true,
        Some(STORE_FORMAT) => false,
        Some(3) => redo,
        Some(_) => redo || !log.is_empty(),
    };
    if !mark {
        return Ok(());
    }
    if let Some(old) = format {
        tracing::warn!(
            store = %path.display(),
            "store upgraded from format {old} to format {STORE_FORMAT}: an ims-vcr from \
             before format {STORE_FORMAT} can no longer open it (export its cassettes \
             with this one to go back)"
        );
    }
    let store_err = |source| store_error(path, source);
    meta.insert("format", &STORE_FORMAT.to_be_bytes())
        .map_err(store_err)?;
    db.flush().map(drop).map_err(store_err)
}

/// The big-endian u64 under `key` in the `meta` tree of the store at `path` (0 when absent).
fn meta_counter(path: &Path, meta: &sled::Tree, key: &str) -> Result<u64> {
    let Some(v) = meta.get(key).map_err(|e| store_error(path, e))? else {
        return Ok(0);
    };
    let bytes = <[u8; 8]>::try_from(v.as_ref()).map_err(|_| Error::StoreCorrupt {
        path: path.to_owned(),
        entry: format!("meta/{key}"),
        reason: format!("{} bytes, expected 8", v.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Refuses, before anything is changed, a store whose files lost what a flush had put on the
/// disk: sled's write counter `persisted` is below the one [`DURABLE_FILE`] holds (every flush
/// puts the counter in sled before noting it there: sled's files were truncated, deleted or
/// restored from an older copy), or the log's file is shorter than its whole groups were.
/// Returns where those groups end.
fn check_not_shortened(
    path: &Path,
    meta: &sled::Tree,
    log: &LogFile,
    persisted: u64,
) -> Result<u64> {
    let durable = read_durable(path)?;
    let log_end = meta_counter(path, meta, LOG_END_KEY)?;
    let len = log.size().map_err(|e| Error::io(log.path(), e))?;
    let lost = if persisted < durable {
        format!(
            "write #{durable} was on disk (see {DURABLE_FILE}) but sled's files hold writes up to \
             #{persisted} only"
        )
    } else if len < log_end {
        format!(
            "its log ({LOG_FILE}) holds {len} bytes where {log_end} were on disk"
        )
    } else {
        return Ok(log_end);
    };
    Err(Error::StoreDamaged {
        path: path.to_owned(),
        reason: format!(
            "{lost}: its files were truncated, garbled or partly deleted, and the recordings \
             after the damage are lost"
        ),
    })
}

/// The device and inode of the folder at `path`, when there is one.
fn folder_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    meta.is_dir().then(|| (meta.dev(), meta.ino()))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store at `path`, creating it when `path` is missing or an empty folder (what
    /// `record`, `auto` and `import` do). A file, or a folder holding anything else (a cassette
    /// folder, say), is refused: a store is never made inside it.
    pub fn open(path: &Path) -> Result<Store> {
        folder::find_or_make(path)?;
        let store = Store::open_folder(path, true)?;
        // A writer may hold the store for long: a command it locks out says who it is. (Readers
        // hold it for moments and write nothing, so they leave no note.)
        crate::storage::durability::note_holder(path);
        Ok(store)
    }

    /// Opens the store at `path`, which must be one already (what every command but `record`,
    /// `auto` and `import` does): a missing folder, or one without a store's files, is refused
    /// and left as it was.
    pub fn open_existing(path: &Path) -> Result<Store> {
        folder::find(path)?;
        Store::open_folder(path, false)
    }

    /// Whether `path` is a store folder (one [`Store::open_existing`] would open).
    pub fn is_at(path: &Path) -> bool {
        folder::find(path).is_ok()
    }

    /// `writer`: opened to record or import (see `durability::open_db`).
    fn open_folder(path: &Path, writer: bool) -> Result<Store> {
        crate::storage::durability::check_writable(path)?;
        // Whatever happens next may change sled's files: the note of a clean close goes first,
        // and again once sled's lock is held (a close still noting could have written it since).
        crate::storage::closed::forget(path)?;
        let db = open_db(path, writer)?;
        crate::storage::closed::forget(path)?;
        let store_err = |source| store_error(path, source);
        let answers = db.open_tree("answers").map_err(store_err)?;
        let meta = db.open_tree("meta").map_err(store_err)?;
        let persisted = meta_counter(path, &meta, GENERATION_KEY)?;
        // Before anything is redone: a store of a format this ims-vcr does not read is refused
        // with its journal untouched.
        let format = read_format(path, &meta)?;
        // Before anything reads the answers: an import stopped part-way is undone.
        import::undo_unfinished(path, &db, &answers)?;
        // Every open of a store of format 3 or later creates its log: one marked so that has
        // none lost it (deleted by hand, or a copy of the folder without it). Before the first
        // flush nothing else would tell, and the log is then the only copy of the recordings
        // (without `--fsync`).
        if format.is_some_and(|format| format >= 3) && !path.join(LOG_FILE).exists() {
            return Err(Error::StoreDamaged {
                path: path.to_owned(),
                reason: format!(
                    "its log ({LOG_FILE}) is missing: it was deleted, or the folder copied \
                     without it, and the recordings it held are lost"
                ),
            });
        }
        let log_file = LogFile::open(path).map_err(|e| Error::io(path.join(LOG_FILE), e))?;
        let log_err = |e| Error::io(log_file.path(), e);
        let log_end = check_not_shortened(path, &meta, &log_file, persisted)?;
        upgrade::adopt_log_tree(path, &db, &meta, format, &log_file)?;
        // A journal left holds every record since the last flush (`--fsync`, or an earlier
        // ims-vcr): the log past that flush is then only as good as its unbroken run of groups.
        let journaled =
            crate::storage::journal::any_left(path).map_err(|e| Error::io(path, e))?;
        let (mut log, logged) =
            log::Log::open(&log_file, answers.is_empty(), log_end, journaled).map_err(log_err)?;
        // The counter is persisted at flushes; the log's last group may hold later writes (on
        // the disk before the counter that says so).
        let generation = persisted.max(logged);
        if logged > persisted {
            log_file.sync().map_err(log_err)?;
            crate::storage::durability::raise_log_counters(&meta, logged, Some(log.end()))
                .map_err(store_err)?;
        }
        mark_format(path, &db, &meta, writer, &log)?;
        let opened_at = generation;
        let (journal, generation) = recover(path, &db, &log_file, &mut log, &meta, generation)?;
        if writer {
            // In the background: the first recordings find disk reserved for them.
            log_file.reserve_ahead_of(log.end());
        }
        let durable = read_durable(path)?;
        if generation < durable {
            return Err(Error::StoreDamaged {
                path: path.to_owned(),
                reason: format!(
                    "write #{durable} was on disk (see {DURABLE_FILE}) but only writes up to \
                     #{generation} could be read back: its files were truncated, garbled or \
                     partly deleted, and the recordings after the damage are lost"
                ),
            });
        }
        // A writer of an empty store knows what it holds without reading it: nothing. Every
        // new request recorded then finds its stored answers in this map (none) instead of
        // searching the log's key index, which grows with the session.
        let known = (writer && log.base_empty && log.is_empty()).then(DigestMap::default);
        let mut store = Store {
            path: path.to_owned(),
            answers: ManuallyDrop::new(answers),
            meta: ManuallyDrop::new(meta.clone()),
            flusher: ManuallyDrop::new(std::sync::Arc::new(Flusher::new(
                path, db, meta, log_file, generation, durable,
            ))),
            read_whole: Default::default(),
            compact_at: COMPACT_AT,
            behind: Mutex::new(None),
            session: Mutex::new(Session {
                next: DigestMap::default(),
                journal,
                log,
                pack_dropped: false,
                poisoned: None,
                known,
                swept: Default::default(),
            }),
            fsync: false,
            writer,
            opened_at,
            written: AtomicU64::new(generation),
            synced: AtomicU64::new(generation),
            commit: commit::GroupCommit::new(generation),
            flush_lock: tokio::sync::Mutex::new(()),
            opened: false,
            folder: folder_id(path),
        };
        store.opened = true;
        Ok(store)
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why what this store wrote is not where it was opened, when it is not: its folder was
    /// deleted, or replaced by another (moved away, restored from a copy), while the store was
    /// open. Its files can still be written (the process holds them open), so nothing failed,
    /// but nothing written since is at the store's path.
    pub fn folder_gone(&self) -> Option<String> {
        let opened = self.folder?;
        match folder_id(&self.path) {
            Some(now) if now == opened => None,
            Some(_) => Some("its folder was replaced by another while the store was open".into()),
            None => Some("its folder was deleted (or moved away) while the store was open".into()),
        }
    }

    fn err(&self, source: sled::Error) -> Error {
        self.flusher.fail();
        store_error(&self.path, source)
    }

    /// An error reading or writing the log's file.
    fn log_err(&self, e: std::io::Error) -> Error {
        Error::io(self.flusher.log.path(), e)
    }

    /// With `true`, [`Store::record_in_attempt`] returns only once the journal is synced to the disk (group
    /// commit), so an answered recording survives a power loss, not only a `kill -9`.
    pub fn fsync_every_answer(mut self, fsync: bool) -> Store {
        self.fsync = fsync;
        self
    }

    /// What every write does first: refuse when an earlier write failed half-way, and delete
    /// the replay pack once after it was last written (see [`Session::pack_dropped`]).
    fn before_write(&self, session: &mut Session) -> Result<()> {
        self.refuse_if_poisoned(session, "writing")?;
        if !session.pack_dropped {
            let pack = self.path.join(crate::storage::snapshot::PACK_FILE);
            match std::fs::remove_file(&pack) {
                Ok(()) => {
                    // The deletion should reach the disk before any write it stands for. Some
                    // file systems cannot sync a directory; then only a power loss right now
                    // could bring the pack back, so that is a warning, not a refusal.
                    let synced = crate::storage::sync_folder(&self.path);
                    if let Err(e) = synced {
                        tracing::warn!(store = %self.path.display(), error = %e, "cannot sync the store folder after deleting its replay pack");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(pack, e)),
            }
            session.pack_dropped = true;
        }
        Ok(())
    }

    /// [`Store::before_write`] for a batch that may write any request (import, re-keying): the
    /// digests known from the pack no longer tell what is stored.
    fn before_batch_write(&self, session: &mut Session) -> Result<()> {
        self.before_write(session)?;
        session.known = None;
        Ok(())
    }

    /// The write counter once no write is under way (every write up to it fully applied): what
    /// a replay pack made from here on may claim to hold.
    pub(crate) fn settled_generation(&self) -> u64 {
        let _session = self.lock();
        self.written.load(Ordering::SeqCst)
    }

    /// Runs `publish` (the rename that puts a new replay pack in place) if the store is still
    /// at `generation`, under the session lock so no write can slip in between, and marks the
    /// pack as current (the next write deletes it). `Ok(false)` when the store moved on.
    pub(crate) fn publish_pack(
        &self,
        generation: u64,
        publish: impl FnOnce() -> std::io::Result<()>,
    ) -> std::io::Result<bool> {
        let mut session = self.lock();
        if self.written.load(Ordering::SeqCst) != generation || session.poisoned.is_some() {
            return Ok(false);
        }
        publish()?;
        session.pack_dropped = false;
        Ok(true)
    }

    /// The error for `doing` after a write failed half-way (see [`Session::poisoned`]).
    fn refuse_if_poisoned(&self, session: &Session, doing: &str) -> Result<()> {
        match &session.poisoned {
            None => Ok(()),
            Some(why) => Err(Error::StoreRefused(format!(
                "store {}: not {doing} after a failed write ({why}); restart to recover what \
                 was written",
                self.path.display()
            ))),
        }
    }

    fn journal_err(&self, e: std::io::Error) -> Error {
        Error::io(self.path.join(crate::storage::journal::JOURNAL_FILE), e)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().expect("store session lock poisoned")
    }

    /// Counts a write once its record is written to the journal (`--fsync`) or about to be
    /// gathered into the log's group (see `commit.rs`), before sled has it (readers that need
    /// every counted write applied take the session lock, see [`Store::settled_generation`]):
    /// taking the session lock's contents proves the caller holds it.
    fn count_write(&self, _session: &mut Session) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Appends the group being gathered to the log's file, ahead of a flush, and returns the
    /// write counter it brings the log up to and where the log's whole groups end (the flush
    /// persists both, see [`Flusher::persist`]). Under the session lock, so neither goes
    /// backwards.
    fn write_pending(&self, session: &mut Session) -> Result<(u64, compact::LogEnd)> {
        let generation = self.written.load(Ordering::SeqCst);
        // Every counted write is in the log once its group is. After a failed write the
        // counter covers a write the log does not hold, and this refuses: persisting it would
        // make reopening skip that write's journal record (`--fsync`) or a later one.
        self.write_group(session)?;
        session.log.flushing();
        let folds = *self.flusher.folds.lock().expect("store folds lock poisoned");
        let at = session.log.end();
        Ok((generation, compact::LogEnd { at, folds }))
    }

    /// [`Store::record_in_attempt`] of an interaction, serialised here, no attempt asked about.
    #[cfg(test)]
    pub async fn record(
        &self,
        key: &RequestKey,
        interaction: &Interaction,
        replace: bool,
    ) -> Result<u32> {
        let seq = self.record_in_attempt(key, Encoded::of(interaction), replace, 0).await?;
        Ok(seq.expect("attempt 0 is never stale"))
    }

    /// Appends an answer for `key`, already serialised (by the leak gate's scan), and returns
    /// once it is in the log's file (written to the kernel, which a `kill -9` cannot undo,
    /// concurrent callers sharing one write; with [`Store::fsync_every_answer`], in the journal
    /// and synced to the disk, concurrent callers sharing one sync).
    /// With `replace`, the first answer recorded for a key in this session replaces the answers
    /// older sessions recorded for it, atomically (record mode); without, it is appended after
    /// them (auto mode).
    ///
    /// `attempt` is the attempt of its named session the request came in (0 outside named
    /// sessions, and for a session never stopped): a session stopped and used again (a rerun
    /// test) starts an attempt, whose first answer to a request is its first in this session
    /// too (it replaces, in record mode, what the earlier attempt recorded). An answer of an
    /// earlier attempt (a test's poll still in flight when its harness stopped the session)
    /// follows that attempt's answers while no later attempt has recorded the request, and is
    /// not stored once one has (`None`): it would come after the later attempt's answers.
    ///
    /// Returns the answer's position among the request's stored answers (0 for the first).
    pub async fn record_in_attempt(
        &self,
        key: &RequestKey,
        encoded: Encoded,
        replace: bool,
        attempt: u64,
    ) -> Result<Option<u32>> {
        let written = self.write_answer(key, encoded, replace, attempt, None).await?;
        Ok(written.map(|(seq, _)| seq))
    }

    /// [`Store::record_in_attempt`] in record mode (its answer replaces the request's older
    /// ones), removing in the same write every answer stored for the requests of `sweep` (the
    /// digests a named session holds), but those this attempt or a later one of the session
    /// recorded in this process: the first answer of a session's attempt makes what the
    /// session holds this attempt's alone, so a request an earlier run made and this one did
    /// not (an image id the upstream drew then) is not left behind. An earlier attempt's answer
    /// still in flight is not stored after it. Returns the answer's position and the digests
    /// whose answers were removed.
    pub async fn record_sweeping(
        &self,
        key: &RequestKey,
        encoded: Encoded,
        attempt: u64,
        sweep: &[[u8; 32]],
    ) -> Result<Option<(u32, Vec<[u8; 32]>)>> {
        self.write_answer(key, encoded, true, attempt, Some(sweep)).await
    }

    async fn write_answer(
        &self,
        key: &RequestKey,
        encoded: Encoded,
        replace: bool,
        attempt: u64,
        sweep: Option<&[[u8; 32]]>,
    ) -> Result<Option<(u32, Vec<[u8; 32]>)>> {
        let value = encoded.into_bytes();
        let mut swept = Vec::new();
        let written_seq;
        let compaction;
        let generation = {
            let mut session = self.lock();
            self.before_write(&mut session)?;
            let digest = key.digest();
            // An earlier attempt's answer after its session's next attempt swept what it held.
            if let Some(name) = key.session()
                && session.swept.get(name).is_some_and(|&latest| latest > attempt)
            {
                return Ok(None);
            }
            match session.next.get(digest) {
                Some(next) if next.attempt > attempt => return Ok(None),
                // A later attempt's first answer: the writer's index learns what the earlier
                // attempt left (it knew only the replay pack's count).
                Some(next) if next.attempt < attempt => {
                    let left = next.seq;
                    session.next.remove(digest);
                    if let Some(known) = &mut session.known {
                        known.insert(*digest, left);
                    }
                }
                _ => {}
            }
            let (seq, mut removes) = match session.next.get(digest) {
                Some(next) => (next.seq, Vec::new()),
                // The first answer of a request in this session: record mode replaces the
                // answers older sessions stored, auto mode appends after them.
                None => {
                    let stored = self.stored_keys(&mut session, digest)?;
                    match replace {
                        true => (0, stored),
                        false => (Store::next_seq(&stored), Vec::new()),
                    }
                }
            };
            // Their `next` is set once the write went through: a write that fails leaves the
            // writer's index as it was, and the next answer sweeps them again.
            let mut cleared = Vec::new();
            for other in sweep.unwrap_or_default().iter().filter(|other| *other != digest) {
                match session.next.get(other) {
                    // This attempt's own answers (or a later attempt's), recorded in this process.
                    Some(next) if next.attempt >= attempt => continue,
                    // An earlier attempt's: the writer's index learns what it left (it knew
                    // only the replay pack's count), as for a later attempt's first answer.
                    Some(next) => {
                        let left = next.seq;
                        if let Some(known) = &mut session.known {
                            known.insert(*other, left);
                        }
                    }
                    None => {}
                }
                let stored = self.stored_keys(&mut session, other)?;
                cleared.push(*other);
                if !stored.is_empty() {
                    removes.extend(stored);
                    swept.push(*other);
                }
            }
            let entry = entry_key(digest, seq);
            let generation = self.written.load(Ordering::SeqCst) + 1;
            let (record, value_at) = crate::storage::journal::encode(generation, &removes, &entry, &value)
                .map_err(|e| self.journal_err(e))?;
            // The record holds the value now: a large answer is not kept twice meanwhile.
            drop(value);
            // With `--fsync` written to the journal at once (the journal's sync below is the
            // group commit, and its records are what a power loss keeps); without, the log's
            // file is the only copy, written by the group commit before the answer is sent
            // (see `commit.rs`).
            if self.fsync {
                session
                    .journal
                    .write(&record)
                    .map_err(|e| self.journal_err(e))?;
            }
            // The journal or the log holds it now (or will, before its answer is sent, else the
            // store is poisoned): whatever happens to sled below, this number is taken.
            self.count_write(&mut session);
            // Gathered into the log's next group, written to its file when full or by the group
            // commit (see `log.rs`); reopening reads it from there, or from the journal.
            let applied = session
                .log
                .append(&self.flusher.log, record, value_at, &removes, &entry);
            if let Err(e) = applied {
                let e = self.log_err(e);
                session.poisoned = Some(e.to_string());
                return Err(e);
            }
            session.next.insert(*digest, Next { seq: seq + 1, attempt });
            // Nothing of the swept requests is stored now: this attempt appends from the start,
            // and an earlier attempt's late answer is not stored after this.
            for other in cleared {
                session.next.insert(other, Next { seq: 0, attempt });
            }
            if sweep.is_some()
                && let Some(name) = key.session()
            {
                let latest = session.swept.entry(name.to_owned()).or_insert(attempt);
                *latest = (*latest).max(attempt);
            }
            written_seq = seq;
            // A long session: a compaction starts here (the journal sealed, with `--fsync`), and
            // the log's sync and sled's flush run after the lock is let go (see `compact.rs`),
            // so no write waits for them.
            compaction = self.compact_if_long(&mut session)?;
            generation
        };
        if let Some(compaction) = compaction {
            let task = compact::flush_behind(std::sync::Arc::clone(&self.flusher), compaction);
            *self.behind.lock().expect("store behind lock poisoned") = Some(task);
        }
        match self.fsync {
            true => self.synced(generation).await?,
            false => self.group_written(generation).await?,
        }
        Ok(Some((written_seq, swept)))
    }

    /// Waits until write `generation` is synced in the journal, syncing if nobody else is.
    async fn synced(&self, generation: u64) -> Result<()> {
        let _turn = self.flush_lock.lock().await;
        if self.synced.load(Ordering::SeqCst) >= generation {
            return Ok(());
        }
        let target = self.written.load(Ordering::SeqCst);
        // The journal being appended to now (a seal synced the one before it).
        let file = self.lock().journal.file();
        let result = tokio::task::spawn_blocking(move || file.sync_data()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.journal_err(e)),
            Err(e) => return Err(self.journal_err(std::io::Error::other(e))),
        }
        self.synced.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }

    /// Waits until write `generation` is flushed, flushing if nobody else is.
    async fn durable(&self, generation: u64) -> Result<()> {
        let _turn = self.flush_lock.lock().await;
        if self.flusher.flushed.load(Ordering::SeqCst) >= generation {
            return Ok(());
        }
        let failures = self.flusher.failed.load(Ordering::SeqCst);
        let (target, log_end) = self.write_pending(&mut self.lock())?;
        let flusher = std::sync::Arc::clone(&self.flusher);
        tokio::task::spawn_blocking(move || flusher.persist(target, log_end))
            .await
            .map_err(|e| self.log_err(std::io::Error::other(e)))??;
        self.flusher.db.flush_async().await.map_err(|e| self.err(e))?;
        self.flusher.flushed_up_to(target);
        self.flusher.healed.fetch_max(failures, Ordering::SeqCst);
        Ok(())
    }

    /// Flushes everything written so far (shutdown, import), then empties the journal when no
    /// write came in meanwhile (otherwise a later flush will).
    pub async fn flush(&self) -> Result<()> {
        let target = self.written.load(Ordering::SeqCst);
        self.durable(target.max(1)).await?;
        {
            let mut session = self.lock();
            if self.written.load(Ordering::SeqCst) == target && !session.journal.is_empty() {
                session.journal.clear().map_err(|e| self.journal_err(e))?;
            }
        }
        // Journals sealed up to `target` are covered by that flush (a compaction still
        // flushing may find its file gone).
        compact::remove_sealed_upto(&self.path, target);
        // A flush still running behind a sealed journal (at the lowest priority, see
        // `compact.rs`) ends last: what it had to do is done above, at this thread's priority,
        // so it has next to nothing left (a deletion in slices stops once the file is gone);
        // once this returns, nothing holds sled but the store.
        let behind = self.behind.lock().expect("store behind lock poisoned").take();
        if let Some(task) = behind {
            let _ = task.await;
        }
        Ok(())
    }

    /// The write counter: grows with every write, across sessions; a replay pack made at one
    /// value is out of date at any other.
    #[cfg(any(test, feature = "internals"))]
    pub fn generation(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Every entry as stored, in key order (so a request's answers are adjacent and in order):
    /// `answers` with the log applied over it (see [`log`]). Damage found in the log comes
    /// first, as errors naming it.
    pub(crate) fn entries(&self) -> Box<dyn Iterator<Item = Result<Entry>> + '_> {
        self.read_whole.store(true, Ordering::Relaxed);
        match self.merged() {
            Ok(merged) => Box::new(merged),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    /// The error for an entry whose value does not decode.
    pub(crate) fn corrupt(&self, entry: &Entry, reason: String) -> Error {
        self.corrupt_at(&entry.key, reason)
    }

    /// The error for the entry at sled key `key`.
    fn corrupt_at(&self, key: &[u8], reason: String) -> Error {
        Error::StoreCorrupt {
            path: self.path.clone(),
            entry: hex(key),
            reason,
        }
    }

    /// Number of stored answers.
    #[cfg(any(test, feature = "internals"))]
    pub fn len(&self) -> usize {
        self.entries().filter(Result::is_ok).count()
    }

    /// True when nothing is recorded (`import` refuses to re-key a store that is not).
    pub fn is_empty(&self) -> bool {
        let log_empty = self.lock().log.is_empty();
        (log_empty && self.answers.is_empty()) || (!log_empty && self.entries().next().is_none())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::fixtures;

    /// A recording in progress, polled by hand ([`run_all`]).
    pub(crate) type InFlight<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32>> + 'a>>;

    /// Polls `recordings` in turn, as a runtime runs ready tasks, until each is done, passing
    /// each result to `done` (with its index) as it comes.
    pub(crate) fn run_all(mut recordings: Vec<InFlight<'_>>, mut done: impl FnMut(usize, Result<u32>)) {
        use std::task::{Context, Poll, Waker};
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

    /// Records `answers` (each with whether it replaces) as concurrent requests do: gathered
    /// into one group of the log, written once for all, in this order.
    pub(crate) fn record_together(store: &Store, answers: &[(&Interaction, bool)]) {
        let keys: Vec<RequestKey> = answers.iter().map(|(i, _)| key(i)).collect();
        let recordings = (answers.iter().zip(&keys))
            .map(|((i, replace), key)| Box::pin(store.record(key, i, *replace)) as InFlight<'_>)
            .collect();
        run_all(recordings, |_, result| {
            result.unwrap();
        });
    }

    /// Each record in the whole groups of `log`: its write and its value.
    pub(crate) fn logged(log: &crate::storage::log_file::LogFile) -> Vec<(u64, Vec<u8>)> {
        let mut records = Vec::new();
        for (_, group) in log.groups().unwrap() {
            for found in crate::storage::journal::scan(&group) {
                if let crate::storage::journal::Found::Record { generation, value, .. } = found {
                    records.push((generation, group[value].to_vec()));
                }
            }
        }
        records
    }

    /// Overwrites the first entry of the store at `dir` (closed) with bytes that do not decode,
    /// around ims-vcr; returns the entry's hex. sled lets go of its lock a moment after its
    /// last handle is dropped, so this waits for it (bounded).
    pub(crate) fn garble_first_entry(dir: &Path) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let db = loop {
            match sled::open(dir) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("{}: {e}", dir.display()),
            }
        };
        let key = overwrite_first_entry(dir, &db, b"{\"request\": {\"meth");
        db.flush().unwrap();
        hex(&key)
    }

    /// Gives the first entry of the store at `dir` (sled's handle `db`: in `answers`, else the
    /// first record of the log, checksummed anew) the value `value`, around ims-vcr; returns its
    /// key.
    pub(crate) fn overwrite_first_entry(dir: &Path, db: &sled::Db, value: &[u8]) -> Vec<u8> {
        let answers = db.open_tree("answers").unwrap();
        if let Some((key, _)) = answers.first().unwrap() {
            answers.insert(&key, value).unwrap();
            return key.to_vec();
        }
        let log = LogFile::open(dir).unwrap();
        let (group, rest) = log::tests::split_first_group(&log);
        let crate::storage::journal::Found::Record {
            generation,
            removes,
            key,
            value: at,
        } = crate::storage::journal::scan(&group).remove(0)
        else {
            panic!("the first record reads");
        };
        let (record, _) = crate::storage::journal::encode(generation, &removes, &key, value).unwrap();
        // The first record starts the group: the rest follows it unchanged, and the groups
        // after it follow the group.
        let mut bytes = record;
        bytes.extend_from_slice(&group[at.end..]);
        log.clear().unwrap();
        let end = log.append(0, &bytes).unwrap();
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(log.path()).unwrap();
        file.write_all_at(&rest, end).unwrap();
        key.to_vec()
    }

    /// A store at `dir` that recorded `olds`, closed with its replay pack and opened again;
    /// `with_pack`: the writer has read that pack (so it knows what each request holds).
    async fn reopened_holding(dir: &Path, olds: &[Interaction], with_pack: bool) -> Store {
        let store = Store::open(dir).unwrap();
        for old in olds {
            store.record(&key(old), old, true).await.unwrap();
        }
        store.flush().await.unwrap();
        store.replay_pack().unwrap().unwrap();
        drop(store);
        let store = open_when_released(dir);
        if with_pack {
            store.replay_pack().unwrap().unwrap();
        }
        store
    }

    pub(super) fn interaction(path: &str, status: &str) -> Interaction {
        fixtures::status_answer(&fixtures::get(path), status)
    }

    pub(super) fn key(i: &Interaction) -> RequestKey {
        RequestKey::of_recorded(&MatchRules::default(), &i.request).unwrap()
    }

    /// A store holding one answer for `/a`, closed; returns its write counter.
    async fn closed_store(dir: &Path) -> u64 {
        let store = Store::open(dir).unwrap();
        let a = interaction("/a", "queued");
        store.record(&key(&a), &a, true).await.unwrap();
        store.flush().await.unwrap();
        store.generation()
    }

    /// Appends to the closed store's journal what a session killed before sled flushed leaves.
    pub(super) fn journal(dir: &Path, generation: u64, i: &Interaction, seq: u32) {
        let (mut journal, _) = Journal::open(dir, 0).unwrap();
        let value = serde_json::to_vec(i).unwrap();
        let entry = entry_key(key(i).digest(), seq);
        journal
            .append(generation, &[] as &[&[u8]], &entry, &value)
            .unwrap();
    }

    pub(super) fn statuses(store: &Store) -> Vec<String> {
        store
            .load(&MatchRules::default())
            .unwrap()
            .iter()
            .flat_map(|r| &r.answers)
            .map(|a| {
                String::from_utf8(
                    crate::model::interaction::body_bytes(&a.response.body)
                        .unwrap()
                        .to_vec(),
                )
                .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_snapshot_sled_never_finished_is_removed_and_the_store_opens_whole() {
        // What a `kill -9` while sled writes its snapshot leaves: an empty
        // `snap.<lsn>.generating`, which sled reads as corruption.
        let dir = tempfile::tempdir().unwrap();
        closed_store(dir.path()).await;
        let partial = dir.path().join("snap.7FFFFFFFFFFFFFFF.generating");
        std::fs::write(&partial, b"").unwrap();
        let store = Store::open_existing(dir.path()).unwrap();
        assert_eq!(store.len(), 1);
        assert!(!partial.exists());
    }

    /// A session's attempts: a later one's first answer to a request replaces the earlier
    /// one's (record mode); an earlier one's late answer follows its attempt's while no later
    /// attempt recorded the request, and is not stored once one has. In each way a writer
    /// learns what a request has stored: from a replay pack, which must learn what each
    /// attempt left; from the store itself (no pack); and knowing an empty store holds nothing.
    /// A session's attempt that sweeps leaves the session its own answers only, in the same
    /// write, whether the store held the swept requests in its replay pack or not; other
    /// sessions keep theirs; an earlier attempt's answer landing after the sweep is not stored,
    /// also for a request the sweep did not know of.
    #[tokio::test]
    async fn a_sweep_leaves_a_session_its_attempts_answers_only() {
        for start in ["pack", "no pack"] {
            let dir = tempfile::tempdir().unwrap();
            let at = |path: &str, status: &str, session: &str| {
                let mut i = interaction(path, status);
                i.request.session = Some(session.into());
                i
            };
            let olds = [("/a", "s"), ("/b", "s"), ("/a", "t")].map(|(path, session)| at(path, "old", session));
            let store = reopened_holding(dir.path(), &olds, start == "pack").await;
            let digest = |path: &str| *key(&at(path, "", "s")).digest();
            let held = |store: &Store| -> Vec<String> {
                let mut held: Vec<String> = (store.load(&MatchRules::default()).unwrap().iter())
                    .flat_map(|r| r.answers.iter())
                    .map(|a| {
                        let body = crate::model::interaction::body_bytes(&a.response.body).unwrap();
                        let status = String::from_utf8_lossy(&body).replace("{\"status\":\"", "").replace("\"}", "");
                        format!("{} {} {status}", a.request.session.as_deref().unwrap_or("-"), a.request.path)
                    })
                    .collect();
                held.sort();
                held
            };
            // Attempt 0's first answer sweeps /a and /b; its later answer to /b starts afresh.
            let c = at("/c", "new", "s");
            let sweep = [digest("/a"), digest("/b")];
            let (seq, swept) = store.record_sweeping(&key(&c), Encoded::of(&c), 0, &sweep).await.unwrap().unwrap();
            assert_eq!((seq, swept.len()), (0, 2), "{start}");
            let b = at("/b", "new", "s");
            assert_eq!(store.record_in_attempt(&key(&b), Encoded::of(&b), true, 0).await.unwrap(), Some(0));
            assert_eq!(held(&store), ["s /b new", "s /c new", "t /a old"], "{start}");
            // Attempt 1 sweeps attempt 0's; attempt 0's late answer to a request nobody knew of
            // is not stored after it.
            let e = at("/e", "rerun", "s");
            let (_, swept) = store.record_sweeping(&key(&e), Encoded::of(&e), 1, &[digest("/b"), digest("/c")]).await.unwrap().unwrap();
            assert_eq!(swept.len(), 2, "{start}");
            let late = at("/d", "late", "s");
            assert_eq!(store.record_in_attempt(&key(&late), Encoded::of(&late), true, 0).await.unwrap(), None);
            assert_eq!(held(&store), ["s /e rerun", "t /a old"], "{start}");
            store.flush().await.unwrap();
            drop(store);
            assert_eq!(held(&open_when_released(dir.path())), ["s /e rerun", "t /a old"], "{start}");
        }
    }

    #[tokio::test]
    async fn an_earlier_attempts_late_answer_never_lands_after_a_later_attempts() {
        for start in ["empty", "pack", "no pack"] {
            let dir = tempfile::tempdir().unwrap();
            let store = match start {
                "empty" => {
                    let store = Store::open(dir.path()).unwrap();
                    assert_eq!(store.lock().known.as_ref().map(DigestMap::len), Some(0));
                    store
                }
                _ => {
                    let store = reopened_holding(dir.path(), &[interaction("/p", "old")], start == "pack").await;
                    if start == "pack" {
                        assert!(store.lock().known.is_some());
                    } else {
                        assert!(store.lock().known.is_none());
                    }
                    store
                }
            };
            let at = |status: &str| interaction("/p", status);
            let seen = |store: &Store| -> Vec<String> {
                statuses(store).iter().map(|s| s.trim_start_matches("{\"status\":\"").trim_end_matches("\"}").to_owned()).collect()
            };
            let put = |status: &'static str, attempt: u64| {
                let (store, answer) = (&store, at(status));
                async move {
                    store.record_in_attempt(&key(&answer), Encoded::of(&answer), true, attempt).await.unwrap()
                }
            };
            assert_eq!(put("1a", 0).await, Some(0));
            assert_eq!(put("1b", 0).await, Some(1));
            // Late, before attempt 1 records the request: after its attempt's answers.
            assert_eq!(put("1c", 0).await, Some(2));
            assert_eq!(seen(&store), ["1a", "1b", "1c"]);
            // Attempt 1 starts the request over; attempt 0's next late answer is not stored.
            assert_eq!(put("2a", 1).await, Some(0));
            assert_eq!(put("1d", 0).await, None);
            assert_eq!(put("2b", 1).await, Some(1));
            assert_eq!(seen(&store), ["2a", "2b"]);
            // And attempt 2 replaces attempt 1's, late ones of attempt 1 landing nowhere after.
            assert_eq!(put("3a", 2).await, Some(0));
            assert_eq!(put("2c", 1).await, None);
            assert_eq!(seen(&store), ["3a"]);
        }
    }

    #[tokio::test]
    async fn a_recorder_learns_from_the_pack_what_is_stored_and_still_replaces_or_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (a, c) = (interaction("/a", "queued"), interaction("/c", "queued"));
        {
            let store = Store::open(dir.path()).unwrap();
            store.record(&key(&a), &a, true).await.unwrap();
            store.record(&key(&c), &c, true).await.unwrap();
            store.flush().await.unwrap();
            store.replay_pack().unwrap().unwrap();
        }
        // A reader never records: it keeps no set.
        let reader = Store::open_existing(dir.path()).unwrap();
        reader.replay_pack().unwrap().unwrap();
        assert!(reader.lock().known.is_none());
        drop(reader);
        let store = open_when_released(dir.path());
        store.replay_pack().unwrap().unwrap();
        assert_eq!(store.lock().known.as_ref().map(DigestMap::len), Some(2));
        // Recorded in the last session: record mode replaces its answers, auto mode appends;
        // a request never recorded starts at 0. None of it asks sled whether a request is there.
        let a2 = interaction("/a", "active");
        assert_eq!(store.record(&key(&a2), &a2, true).await.unwrap(), 0);
        let c2 = interaction("/c", "active");
        assert_eq!(store.record(&key(&c2), &c2, false).await.unwrap(), 1);
        let b = interaction("/b", "queued");
        assert_eq!(store.record(&key(&b), &b, true).await.unwrap(), 0);
        assert_eq!(store.answers_of(key(&a).digest()).unwrap().len(), 1);
        assert_eq!(store.answers_of(key(&c).digest()).unwrap().len(), 2);
        // A batch that may write any request drops what the pack said.
        let d = interaction("/d", "queued");
        let recording = Recording {
            key: key(&d),
            answers: vec![d],
        };
        store.import(&[recording]).await.unwrap();
        assert!(store.lock().known.is_none());
    }

    /// Opens the store at `dir` to write, once the last handle's sled lock is let go (sled
    /// releases it a moment after the handle is dropped).
    pub(super) fn open_when_released(dir: &Path) -> Store {
        for _ in 0..100 {
            match Store::open(dir) {
                Ok(store) => return store,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        Store::open(dir).unwrap()
    }

    #[tokio::test]
    async fn only_a_folder_holding_a_store_is_opened_and_only_a_new_or_empty_one_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let (missing, empty, other) = (
            dir.path().join("missing"),
            dir.path().join("empty"),
            dir.path().join("other"),
        );
        std::fs::create_dir(&empty).unwrap();
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("a.json"), b"{}").unwrap();
        for path in [&missing, &empty, &other] {
            let e = Store::open_existing(path).unwrap_err().to_string();
            assert!(e.contains("not an ims-vcr store"), "{e}");
        }
        assert!(!missing.exists());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
        let e = Store::open(&other).unwrap_err().to_string();
        assert!(e.contains("new or empty folder"), "{e}");
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
        for path in [&missing, &empty] {
            closed_store(path).await;
            assert_eq!(Store::open_existing(path).unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn journaled_writes_sled_had_not_flushed_are_applied_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let g = closed_store(dir.path()).await;
        journal(dir.path(), g + 1, &interaction("/a", "active"), 1);
        journal(dir.path(), g + 2, &interaction("/b", "active"), 0);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.generation(), g + 2);
        assert_eq!(store.len(), 3);
        assert_eq!(read_durable(dir.path()).unwrap(), g + 2);
        let journal = dir.path().join(crate::storage::journal::JOURNAL_FILE);
        assert_eq!(std::fs::metadata(journal).unwrap().len(), 0);
    }

    #[tokio::test]
    async fn journaled_writes_sled_already_has_are_not_applied_again() {
        let dir = tempfile::tempdir().unwrap();
        let g = closed_store(dir.path()).await;
        // Write #g is in sled; a journal record of it (here, with another value) is old news.
        journal(dir.path(), g, &interaction("/a", "stale"), 0);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.generation(), g);
        assert_eq!(statuses(&store), vec![r#"{"status":"queued"}"#]);
    }

    #[tokio::test]
    async fn journaled_writes_are_redone_in_batches_that_give_what_one_write_at_a_time_gives() {
        let dir = tempfile::tempdir().unwrap();
        let g = closed_store(dir.path()).await;
        // A killed session's journal, longer than several redo batches: an earlier session's
        // answers of /b, then a session that replaced them (removing keys it inserts again
        // right after) and appended more, with /c's answers in between.
        let (mut open, _) = Journal::open(dir.path(), 0).unwrap();
        let (mut n, mut bytes) = (g, 0);
        let mut write = |journal: &mut Journal, removes: &[[u8; 36]], i: &Interaction, seq| {
            n += 1;
            let value = serde_json::to_vec(i).unwrap();
            bytes += value.len();
            let entry = entry_key(key(i).digest(), seq);
            journal.append(n, removes, &entry, &value).unwrap();
        };
        let status = |session: u32, seq: u32| format!("s{session}-{seq}-{}", "x".repeat(300));
        let b = |session, seq| interaction("/b", &status(session, seq));
        for seq in 0..20 {
            write(&mut open, &[], &b(1, seq), seq);
        }
        let earlier: Vec<[u8; 36]> = (0..20).map(|s| entry_key(key(&b(1, 0)).digest(), s)).collect();
        write(&mut open, &earlier, &b(2, 0), 0);
        for seq in 1..8 {
            write(&mut open, &[], &interaction("/c", &status(2, seq)), seq - 1);
            write(&mut open, &[], &b(2, seq), seq);
        }
        drop(open);
        assert!(bytes > 3 * crate::storage::durability::REDO_BATCH_BYTES, "{bytes}");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.generation(), g + 35);
        assert_eq!(read_durable(dir.path()).unwrap(), g + 35);
        // sled's own counter says so too: the next open redoes nothing and refuses nothing.
        let counter = store.meta.get(GENERATION_KEY).unwrap().unwrap();
        assert_eq!(counter.as_ref(), (g + 35).to_be_bytes());
        let bodies = |path: &str| -> Vec<String> {
            let i = interaction(path, "x");
            store
                .answers_of(key(&i).digest())
                .unwrap()
                .iter()
                .map(|a| {
                    let body = crate::model::interaction::body_bytes(&a.response.body).unwrap();
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(bodies("/b"), (0..8).map(|s| status(2, s)).collect::<Vec<_>>());
        assert_eq!(bodies("/c"), (1..8).map(|s| status(2, s)).collect::<Vec<_>>());
        assert_eq!(store.len(), 1 + 8 + 7);
    }

    fn sealed_files(dir: &Path) -> Vec<u64> {
        crate::storage::journal::sealed(dir)
            .unwrap()
            .into_iter()
            .map(|(g, _)| g)
            .collect()
    }

    #[tokio::test]
    async fn sealed_journals_a_crash_left_are_applied_oldest_first_then_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let g = closed_store(dir.path()).await;
        // A session sealed its journal twice (the flushes behind never finished), then wrote
        // one more answer to the current journal, and was killed.
        let (mut open, _) = Journal::open(dir.path(), 0).unwrap();
        let b = interaction("/b", "active");
        let value = serde_json::to_vec(&b).unwrap();
        for (n, seq) in [(1, 0), (2, 1)] {
            let entry = entry_key(key(&b).digest(), seq);
            open.append(g + n, &[] as &[&[u8]], &entry, &value).unwrap();
            open.seal(g + n, false).unwrap();
        }
        drop(open);
        journal(dir.path(), g + 3, &interaction("/c", "active"), 0);
        assert_eq!(sealed_files(dir.path()), vec![g + 1, g + 2]);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.generation(), g + 3);
        assert_eq!(store.len(), 4);
        assert_eq!(store.answers_of(key(&b).digest()).unwrap().len(), 2);
        assert!(sealed_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_sealed_journal_sleds_counter_covers_is_deleted_unread() {
        let dir = tempfile::tempdir().unwrap();
        let g = closed_store(dir.path()).await;
        // Garbled bytes with a whole record after them: read, that would be named as damage.
        let b = interaction("/b", "active");
        let value = serde_json::to_vec(&b).unwrap();
        let entry = entry_key(key(&b).digest(), 0);
        let (record, _) = crate::storage::journal::encode(g, &[] as &[&[u8]], &entry, &value).unwrap();
        let mut bytes = vec![0xA5u8; 64];
        bytes.extend_from_slice(&record);
        let name = format!("{}{g:020}", crate::storage::journal::SEALED_PREFIX);
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!((store.generation(), store.len()), (g, 1));
        assert!(sealed_files(dir.path()).is_empty());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().contains("damaged")), "{left:?}");
    }

    #[tokio::test]
    async fn a_log_grown_past_its_bound_is_synced_and_sled_flushed_behind_with_or_without_fsync() {
        for fsync in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap().fsync_every_answer(fsync).compacting_at(1);
            let a = interaction("/a", "active");
            store.record(&key(&a), &a, true).await.unwrap();
            let behind = store.behind.lock().unwrap().take();
            let behind = behind.unwrap_or_else(|| panic!("fsync {fsync}: no compaction began"));
            behind.await.unwrap();
            let g = store.generation();
            assert_eq!(store.flusher.flushed.load(Ordering::SeqCst), g, "fsync {fsync}");
            assert_eq!(read_durable(dir.path()).unwrap(), g, "fsync {fsync}");
            // With `--fsync` the journal was sealed and its file deleted once flushed.
            assert!(sealed_files(dir.path()).is_empty(), "fsync {fsync}");
            let journal = std::fs::metadata(dir.path().join(crate::storage::journal::JOURNAL_FILE));
            assert_eq!(journal.unwrap().len(), 0, "fsync {fsync}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_session_compacts_and_loses_no_write_while_sled_flushes_behind() {
        for fsync in [false, true] {
            a_long_session_loses_no_write_while_sled_flushes_behind(fsync).await;
        }
    }

    async fn a_long_session_loses_no_write_while_sled_flushes_behind(fsync: bool) {
        let dir = tempfile::tempdir().unwrap();
        // Every write starts a compaction when none is under way.
        let store = Store::open(dir.path()).unwrap().fsync_every_answer(fsync).compacting_at(1);
        let store = std::sync::Arc::new(store);
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..25 {
                        let a = interaction(&format!("/w{w}/{n}"), "active");
                        store.record(&key(&a), &a, true).await.unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let written = store.generation();
        assert_eq!(written, 200);
        store.flush().await.unwrap();
        assert!(sealed_files(dir.path()).is_empty());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!((store.generation(), store.len()), (written, 200));
        assert!(read_durable(dir.path()).unwrap() >= written);
    }

    #[tokio::test]
    async fn a_gap_between_sled_and_the_journal_is_refused_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let g = closed_store(dir.path()).await;
        journal(dir.path(), g + 2, &interaction("/b", "active"), 0);
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
        assert!(
            e.contains(&format!(
                "continues at write #{} but the store ends at write #{g}",
                g + 2
            )),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_pack_is_published_only_at_its_counter_and_the_next_write_deletes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = interaction("/a", "queued");
        store.record(&key(&a), &a, true).await.unwrap();
        let made_at = store.settled_generation();
        let pack = dir.path().join(crate::storage::snapshot::PACK_FILE);
        let publish = || std::fs::write(&pack, b"pack");
        // A write lands while the pack is being made: it is not published.
        store.record(&key(&a), &a, true).await.unwrap();
        assert!(!store.publish_pack(made_at, publish).unwrap());
        assert!(!pack.exists());
        // Made at the current counter: published, and the next write deletes it.
        assert!(
            store
                .publish_pack(store.settled_generation(), publish)
                .unwrap()
        );
        assert!(pack.exists());
        store.record(&key(&a), &a, true).await.unwrap();
        assert!(!pack.exists());
    }

    #[tokio::test]
    async fn a_store_whose_sled_failed_closes_without_its_flush_and_the_next_open_reads_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for path in ["/a", "/b"] {
            let a = interaction(path, "active");
            store.record(&key(&a), &a, true).await.unwrap();
        }
        // What a write sled could not finish (a full disk) leaves: sled's flush could then wait
        // forever, so closing must not ask for it.
        store.flusher.fail();
        drop(store);
        assert!(!dir.path().join(crate::storage::closed::CLOSED_FILE).exists(), "no clean close");
        let log = crate::storage::log_file::LogFile::open(dir.path()).unwrap();
        assert_eq!(log.groups().unwrap().len(), 2, "the log's file keeps the answers");
        // The next start (here, of a copy: this process still holds the store it let go of).
        let next = tempfile::tempdir().unwrap();
        for file in walk(dir.path()) {
            let to = next.path().join(file.strip_prefix(dir.path()).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap();
        }
        let reopened = Store::open(next.path()).unwrap();
        assert_eq!(reopened.len(), 2);
        assert_eq!(statuses(&reopened), [r#"{"status":"active"}"#; 2]);
    }

    #[tokio::test]
    async fn a_store_that_got_over_a_sled_error_closes_as_any_other_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = interaction("/a", "active");
        store.record(&key(&a), &a, true).await.unwrap();
        // An error sled got over (a flush behind that failed once), then every write flushed.
        store.flusher.fail();
        store.flush().await.unwrap();
        drop(store);
        assert!(dir.path().join(crate::storage::closed::CLOSED_FILE).exists(), "a clean close");
        let again = Store::open(dir.path()).expect("opened again in this process");
        assert_eq!(again.len(), 1);
    }

    #[tokio::test]
    async fn a_store_whose_uncounted_sled_write_failed_after_its_last_flush_is_not_closed_with_sleds_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = interaction("/a", "active");
        store.record(&key(&a), &a, true).await.unwrap();
        store.flush().await.unwrap();
        // What an import's batch sled could not write leaves: an error, no write counted, every
        // counted write flushed (and the journal empty).
        store.flusher.fail();
        drop(store);
        assert!(
            !dir.path().join(crate::storage::closed::CLOSED_FILE).exists(),
            "sled's handles let go of without its flush"
        );
    }

    /// Every file under `dir`.
    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[tokio::test]
    async fn record_returns_with_the_answer_in_the_log_or_with_fsync_the_journal_and_flush_empties_it() {
        let dir = tempfile::tempdir().unwrap();
        for fsync in [false, true] {
            let store = Store::open(dir.path()).unwrap().fsync_every_answer(fsync);
            let a = interaction("/a", if fsync { "synced" } else { "written" });
            store.record(&key(&a), &a, true).await.unwrap();
            let journal = dir.path().join(crate::storage::journal::JOURNAL_FILE);
            let records = Journal::open(dir.path(), 0).unwrap().1.unwrap();
            let last = match fsync {
                // Synced in the journal; the log gathers it into a group written later.
                true => records.last().map(|r| (r.generation, r.value.clone())),
                // Written to the log's file as a group of its own; nothing in the journal.
                false => {
                    assert!(records.is_empty());
                    logged(&store.flusher.log).pop()
                }
            };
            assert_eq!(last, Some((store.generation(), serde_json::to_vec(&a).unwrap())));
            store.flush().await.unwrap();
            assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
        }
    }
}
