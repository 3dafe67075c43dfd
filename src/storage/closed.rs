//! A cleanly closed store's note: what lets a replay serve the store's pack without opening
//! sled.
//!
//! On a large store, opening sled is most of a replay's start-up: sled reads its snapshot and
//! zeroes every free segment of its file (on 100,000 recordings, about 130 ms of 190), while a
//! replay needs the store only to tell whether its replay pack still describes it. So a store
//! closed with every write flushed and its journal empty leaves [`CLOSED_FILE`]: the write
//! counter it closed at, and stamps of sled's files and the log's as the close left them. Every
//! open deletes the note before sled opens (`Store::open_folder`), so the note stands only while
//! nothing has opened the store since.
//!
//! The note is written once sled has let go of its files (the close takes sled's lock, which
//! every opener needs, and stamps the files under it), and every open deletes it again once it
//! holds that lock, so a note that lands late cannot outlive an open.
//!
//! A replay then serves the pack without opening sled when ([`pack_of_closed_store`]): it gets
//! sled's lock (shared, while it checks: no writer holds the store), the note is there and sled's
//! files are as the note says (length, modification and change times, inode: a copy, even one
//! that keeps modification times, is a new inode), the durable write counter is not past the
//! note's, no journal is left over, and the pack claims the note's write counter. Anything else (a
//! crash, a copied or damaged store, a store opened by an older ims-vcr) opens the store as
//! before, which refuses the damage sled finds by name (see `docs/security.md` for what it finds).
//!
//! The note stamps sled's snapshot files too. sled reads, as it opens, its latest snapshot and
//! only the log written after it, and writes a snapshot only as it opens; so a session that wrote
//! opens sled once more as it closes, before it notes the close (`store/close.rs`), and the next
//! open reads a few pages instead of the whole session back.

use std::fs::File;
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::error::{Error, Result};
use crate::model::key::MatchRules;
use crate::storage::durability::{LOCK_WAIT, read_durable};
use crate::storage::journal::{JOURNAL_FILE, sealed};
use crate::storage::log_file::LOG_FILE;
use crate::storage::pack::Pack;
use crate::storage::snapshot::PACK_FILE;

/// File in the store directory that a clean close leaves (see the module docs).
pub const CLOSED_FILE: &str = "ims-vcr-closed";

/// First line of [`CLOSED_FILE`] (version 2 also stamps sled's snapshot files, so a note is also
/// void once they change; version 3 the log's file, store format 3).
const HEADER: &str = "ims-vcr closed store 3";

/// sled's files the note stamps (see [`stamp`]) besides its snapshots: its log and its config.
pub(crate) const SLED_FILES: [&str; 2] = ["db", "conf"];

/// How sled's snapshot files are named (`snap.` and the log position they reach, in hex; a
/// snapshot being written has `.generating` after that).
pub(crate) const SNAPSHOT_PREFIX: &str = "snap.";

/// The note's text for a store at `dir` closed at write `generation`, or why not.
fn note_text(dir: &Path, generation: u64) -> std::io::Result<String> {
    let mut text = format!("{HEADER}\nwrite {generation}\n");
    let names = (SLED_FILES.iter().chain([&LOG_FILE]))
        .map(|n| n.to_string())
        .chain(snapshots(dir)?);
    for name in names {
        text.push_str(&format!("{name} {}\n", stamp(&dir.join(&name))?));
    }
    Ok(text)
}

/// The names of sled's snapshot files in `dir`, sorted.
fn snapshots(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(SNAPSHOT_PREFIX) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What the note holds of a file: its length, modification time and, where the system has them,
/// its change time and inode (which no copy keeps, and no write can leave as they were).
fn stamp(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let modified = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_err(std::io::Error::other)?
        .as_nanos();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(format!(
            "{} {modified} {}.{:09} {}",
            meta.len(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino()
        ))
    }
    #[cfg(not(unix))]
    Ok(format!("{} {modified}", meta.len()))
}

/// Leaves the note of a store at `dir` just closed at write `generation`, sled's handles
/// dropped: once sled's threads have let go of its files (its lock, waited for as an opener
/// waits), stamped and written under that lock (temporary file and rename). Best effort: without
/// it the next replay opens sled.
pub(crate) fn note(dir: &Path, generation: u64) {
    let Some(_lock) = Lock::wait_exclusive(dir) else {
        tracing::debug!(store = %dir.display(), "the store was opened again before its close could be noted");
        return;
    };
    let file = dir.join(CLOSED_FILE);
    let tmp = dir.join(format!("{CLOSED_FILE}.{}.tmp", std::process::id()));
    let written = note_text(dir, generation)
        .and_then(|text| crate::storage::write_new(&tmp, text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(store = %dir.display(), error = %e, "cannot note the store's clean close");
    }
}

/// Deletes the note of the store at `dir`: what every open does before sled opens, and again once
/// sled holds the store (a close still noting could have written it since). A note that cannot be
/// deleted refuses the open, as a note left standing could vouch for files that change.
pub(crate) fn forget(dir: &Path) -> Result<()> {
    let file = dir.join(CLOSED_FILE);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::store_io(dir, file, e)),
    }
}

/// The write counter the store at `dir` was closed at, when its note stands, sled's files are
/// as the note says, and no journal is left over; `None` otherwise.
fn closed_at(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(CLOSED_FILE)).ok()?;
    let generation: u64 = text
        .lines()
        .nth(1)?
        .strip_prefix("write ")?
        .parse()
        .ok()?;
    if note_text(dir, generation).ok()? != text {
        return None;
    }
    // Writes known to be on disk past the note's: sled's files were restored from before them.
    if read_durable(dir).ok()? > generation {
        return None;
    }
    let journal = std::fs::metadata(dir.join(JOURNAL_FILE)).ok()?;
    (journal.len() == 0 && sealed(dir).ok()?.is_empty()).then_some(generation)
}

/// The replay pack of the store at `dir` and the match rules it was made under, read without
/// opening sled, when the store was closed cleanly at the write the pack was made at and nothing
/// opened it since (see the module docs). `None`: open the store.
pub fn pack_of_closed_store(dir: &Path) -> Option<(MatchRules, Pack)> {
    let path = dir.join(PACK_FILE);
    let (generation, file) = {
        // Held while checking and opening only: the pack is parsed after, from the open file
        // (a writer that opens the store meanwhile deletes the name, not the file), so a writer
        // waiting for the lock waits for no parse.
        let _lock = Lock::try_shared(dir)?;
        (closed_at(dir)?, File::open(&path).ok()?)
    };
    let (claim, pack) = Pack::from_file(file, &path).ok()?.into_parts();
    // The rules in force at that write are the ones the pack was made under (a change of rules
    // is a write of its own), so only the write counter is compared.
    let rules = claim.rules();
    (claim.generation() == generation && rules.validate().is_ok()).then(|| (rules.clone(), pack))
}

/// Waits, without holding up the async runtime, while the store at `dir` is held exclusively
/// (by another process, or by a task of this one still letting go of it), at most `LOCK_WAIT`.
/// Opening the store waits for its lock on the calling thread; with one CPU the runtime has no
/// other thread, and a task of this process that holds the store could not finish meanwhile.
/// Still held after that: the store is another process's, and the error says so at once
/// (opening it would wait as long again).
pub async fn until_unlocked(dir: &Path) -> crate::Result<()> {
    let started = std::time::Instant::now();
    while cfg!(unix) && dir.join("db").is_file() && Lock::try_shared(dir).is_none() {
        if started.elapsed() >= LOCK_WAIT {
            return Err(crate::storage::durability::locked(dir));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

/// sled's lock on the store (an `flock` of its `db` file), taken by this module: shared while a
/// replay checks the note (no writer holds the store meanwhile, and one being opened waits, as
/// `open_db` retries while the lock is taken), exclusive while a close stamps the files.
struct Lock {
    /// The locked file: the lock lasts as long as it is open.
    _file: File,
}

impl Lock {
    /// The lock, shared, when no process holds it exclusively.
    fn try_shared(dir: &Path) -> Option<Lock> {
        Lock::take(dir, true)
    }

    /// The lock, exclusive, once sled's threads have let go of it; `None` when it is still held
    /// after `LOCK_WAIT` (another process opened the store).
    fn wait_exclusive(dir: &Path) -> Option<Lock> {
        if !cfg!(unix) {
            return None;
        }
        let started = std::time::Instant::now();
        loop {
            if let Some(lock) = Lock::take(dir, false) {
                return Some(lock);
            }
            if started.elapsed() >= LOCK_WAIT {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[cfg(unix)]
    fn take(dir: &Path, shared: bool) -> Option<Lock> {
        use std::os::fd::AsRawFd;
        let file = File::open(dir.join("db")).ok()?;
        let kind = if shared { libc::LOCK_SH } else { libc::LOCK_EX };
        // SAFETY: `flock` on a descriptor this function owns; the lock ends when the file closes.
        let locked = unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) };
        (locked == 0).then_some(Lock { _file: file })
    }

    /// Elsewhere no note is taken or trusted: the store is always opened.
    #[cfg(not(unix))]
    fn take(_dir: &Path, _shared: bool) -> Option<Lock> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;
    use crate::model::key::RequestKey;
    use crate::storage::store::Store;

    /// A store at `dir` holding one answer, with its pack, closed.
    async fn packed_store(dir: &Path) {
        let store = Store::open(dir).unwrap();
        let a = fixtures::status_answer(&fixtures::get("/v2/images/a"), "active");
        let key = RequestKey::of_recorded(&MatchRules::default(), &a.request).unwrap();
        store.record(&key, &a, true).await.unwrap();
        store.flush().await.unwrap();
        store.replay_pack().unwrap().unwrap();
    }

    /// [`pack_of_closed_store`], once sled has let go of the store (a moment after its last
    /// handle is dropped).
    fn quick(dir: &Path) -> Option<(MatchRules, Pack)> {
        for _ in 0..50 {
            if let Some(found) = pack_of_closed_store(dir) {
                return Some(found);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    #[tokio::test]
    async fn a_cleanly_closed_store_is_served_from_its_pack_until_anything_opens_or_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        packed_store(dir).await;
        let (rules, pack) = quick(dir).expect("a clean close lets the pack be served");
        assert_eq!(rules, MatchRules::default());
        assert_eq!(pack.requests.len(), 1);

        // An open deletes the note; a close leaves it again.
        let store = Store::open_existing(dir).unwrap();
        assert!(!dir.join(CLOSED_FILE).exists());
        assert!(pack_of_closed_store(dir).is_none());
        drop(store);
        assert!(quick(dir).is_some());

        // A writer holding the store: the note is gone, and one put back does not count while
        // the writer holds sled's lock.
        let generation = pack.generation();
        let store = Store::open(dir).unwrap();
        assert!(!dir.join(CLOSED_FILE).exists());
        let noted = note_text(dir, generation).unwrap();
        std::fs::write(dir.join(CLOSED_FILE), &noted).unwrap();
        assert!(pack_of_closed_store(dir).is_none());
        drop(store);
        assert!(quick(dir).is_some());

        // Writes known to be on disk past the note's: sled's files came from a backup.
        let durable = dir.join(crate::storage::durability::DURABLE_FILE);
        let was = std::fs::read(&durable).unwrap();
        std::fs::write(&durable, format!("{}\n", generation + 1)).unwrap();
        assert!(pack_of_closed_store(dir).is_none(), "durable past the note");
        std::fs::write(&durable, was).unwrap();
        assert!(pack_of_closed_store(dir).is_some());

        // sled's files changed since the note (damage, a copy), a journal left over, or no
        // pack: the store is opened instead.
        let db = std::fs::read(dir.join("db")).unwrap();
        std::fs::write(dir.join("db"), &db).unwrap();
        assert!(pack_of_closed_store(dir).is_none(), "db rewritten");
        note(dir, generation);
        assert!(pack_of_closed_store(dir).is_some(), "noted again");
        std::fs::write(dir.join(JOURNAL_FILE), b"x").unwrap();
        assert!(pack_of_closed_store(dir).is_none(), "journal left over");
        std::fs::write(dir.join(JOURNAL_FILE), b"").unwrap();
        let pack = std::fs::read(dir.join(PACK_FILE)).unwrap();
        std::fs::remove_file(dir.join(PACK_FILE)).unwrap();
        assert!(pack_of_closed_store(dir).is_none(), "no pack");
        std::fs::write(dir.join(PACK_FILE), &pack).unwrap();
        assert!(pack_of_closed_store(dir).is_some());
        std::fs::write(dir.join(CLOSED_FILE), format!("{HEADER}\nwrite 7\n")).unwrap();
        assert!(pack_of_closed_store(dir).is_none(), "another write counter");
    }

    /// The highest log position a snapshot of sled's in `dir` reaches.
    fn snapshot_reach(dir: &Path) -> u64 {
        let names = snapshots(dir).unwrap();
        let last = names.iter().rfind(|n| !n.ends_with(".generating"));
        u64::from_str_radix(&last.expect("a snapshot")[SNAPSHOT_PREFIX.len()..], 16).unwrap()
    }

    #[tokio::test]
    async fn a_close_that_wrote_leaves_a_snapshot_of_its_writes_and_notes_it()
    {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        packed_store(dir).await;
        let after_first = snapshot_reach(dir);
        let store = Store::open(dir).unwrap();
        let opened = snapshot_reach(dir);
        let a = fixtures::status_answer(&fixtures::get("/v2/images/b"), "active");
        let key = RequestKey::of_recorded(&MatchRules::default(), &a.request).unwrap();
        store.record(&key, &a, true).await.unwrap();
        store.flush().await.unwrap();
        drop(store);
        assert!(quick(dir).is_none(), "the write made the pack out of date");
        let closed = snapshot_reach(dir);
        assert!(closed > opened && opened >= after_first, "{after_first} {opened} {closed}");
        let noted = std::fs::read_to_string(dir.join(CLOSED_FILE)).unwrap();
        assert!(noted.contains(&format!("snap.{closed:016X} ")), "{noted}");

        let store = Store::open_existing(dir).unwrap();
        assert_eq!(store.len(), 2);
        drop(store);

        // A store moved away before a writer closes is not made again where it was.
        let elsewhere = tempfile::tempdir().unwrap();
        let (from, to) = (elsewhere.path().join("moved"), elsewhere.path().join("here"));
        packed_store(&from).await;
        let store = Store::open(&from).unwrap();
        store.record(&key, &a, false).await.unwrap();
        store.flush().await.unwrap();
        std::fs::rename(&from, &to).unwrap();
        drop(store);
        assert!(!from.exists());
        assert!(!to.join(CLOSED_FILE).exists());
    }

    /// On a current-thread runtime (what a process given one CPU runs), the wait lets the task
    /// that still holds the store run and let go of it, so the store then opens.
    #[tokio::test]
    async fn waiting_for_a_store_a_task_of_this_process_holds_lets_that_task_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = Store::open(dir.path()).unwrap();
        let letting_go = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            drop(held);
        });
        let started = std::time::Instant::now();
        until_unlocked(dir.path()).await.unwrap();
        assert!(letting_go.is_finished(), "returned while the store was held");
        assert!(started.elapsed() < LOCK_WAIT, "waited the whole time: {:?}", started.elapsed());
        Store::open(dir.path()).unwrap();
    }
}
