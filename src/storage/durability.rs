//! How a store survives crashes: opening sled (waiting out a lock a closing process still
//! holds, recognising damage), redoing journal records sled had not flushed, and the
//! `ims-vcr-durable` counter that lets a later open detect lost writes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::journal::Journal;
use crate::storage::layout::{GENERATION_KEY, LOG_END_KEY};

/// sled's default cache is 1 GiB; a test proxy needs far less. A store opened to write (record,
/// auto, import) inserts at random places in the tree (keys are request digests), and an insert
/// into a leaf the cache does not hold reads and decodes the leaf first: with 64 MiB, recording
/// into a 100,000-recording store (about 200 MB of entries) cost sled half as much again per
/// answer as into an empty one. 256 MiB holds such a store's tree. The cache fills only with what
/// a session reads and writes, so a session that records a few hundred answers stays small; one
/// that records tens of thousands grows with them (68,000 answers into an empty store: 171 MB
/// RSS, 112 MB with 64 MiB), and one recording into a 100,000-recording store peaks at about
/// 340 MB (180 MB). One opened only to read (replay, export, verify) reads each page once, in
/// order, and a small cache bounds the memory a pack rebuild of a large store leaves behind.
const WRITER_CACHE_BYTES: u64 = 256 * 1024 * 1024;
const READER_CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// File in the store directory holding the last write counter known to be flushed (decimal).
pub const DURABLE_FILE: &str = "ims-vcr-durable";

/// Opens the journal in `dir` and applies to sled the writes it holds beyond sled's write
/// counter `generation` (they were answered, but the log and sled had not been flushed when the
/// last session ended: a `kill -9`), sealed journals first, by adding them to the store's log
/// (`log_file`, gathered in `log`) as recording does. They must continue the counter without
/// a gap; a gap means sled lost writes the journal no longer covers, and the store is refused
/// as damaged. Returns the journal, emptied (sealed journals deleted), and the write counter
/// after recovery.
pub(crate) fn recover(
    dir: &Path,
    db: &sled::Db,
    log_file: &crate::storage::log_file::LogFile,
    log: &mut crate::storage::store::LogState,
    meta: &sled::Tree,
    generation: u64,
) -> Result<(Journal, u64)> {
    let file = dir.join(crate::storage::journal::JOURNAL_FILE);
    let (mut journal, records) = Journal::open(dir, generation).map_err(|e| Error::io(&file, e))?;
    let damaged = |reason: String| Error::StoreDamaged {
        path: dir.to_owned(),
        reason,
    };
    // Journals sealed by a session that ended before sled's flush covered them come first. One
    // sealed at a write the store's counter covers (sled's, or the log's synced groups' when
    // they go further; the file's name says the last write it holds) is not read: its records
    // would all be passed over (a session killed while it deleted it, after the flush, leaves
    // one of 64 MiB; passing over its records cost a killed store's first answer about 8 ms).
    let sealed = crate::storage::journal::sealed(dir).map_err(|e| Error::io(dir, e))?;
    let mut all = Vec::new();
    for (_, path) in sealed.iter().filter(|(upto, _)| *upto > generation) {
        let read = crate::storage::journal::read_sealed(path, generation).map_err(|e| Error::io(path, e))?;
        all.extend(read.map_err(damaged)?);
    }
    all.extend(records.map_err(damaged)?);
    let store_err = |source| store_error(dir, source);
    let log_err = |e: std::io::Error| Error::io(log_file.path(), e);
    let mut recovered = generation;
    // Redone records go to the log in groups, as recording puts them there: a few sled
    // inserts, not one per record (a journal of 64 MiB holds tens of thousands).
    for record in all.into_iter().filter(|r| r.generation > generation) {
        if record.generation != recovered + 1 {
            return Err(damaged(format!(
                "{} continues at write #{} but the store ends at write #{recovered}: the writes \
                 in between were lost",
                file.display(),
                record.generation
            )));
        }
        let (bytes, value_at) = crate::storage::journal::encode(
            record.generation,
            &record.removes,
            &record.key,
            &record.value,
        )
        .map_err(|e| Error::io(&file, e))?;
        log.append(log_file, bytes, value_at, &record.removes, &record.key)
            .map_err(log_err)?;
        recovered = record.generation;
    }
    if recovered > generation {
        log.write_pending(log_file).map_err(log_err)?;
        // The log on the disk before the counter that says it holds these writes.
        log_file.sync().map_err(log_err)?;
        raise_log_counters(meta, recovered, Some(log.end())).map_err(store_err)?;
        db.flush().map_err(store_err)?;
        note_durable(dir, recovered);
        tracing::info!(
            store = %dir.display(),
            answers = recovered - generation,
            "recovered answers the last session wrote to its journal but not to sled"
        );
    }
    if !journal.is_empty() || !sealed.is_empty() {
        // Their records may all be in the log already, written by a session killed before it
        // synced the log: synced now, before the only other copy goes.
        log_file.sync().map_err(log_err)?;
    }
    if !journal.is_empty() {
        journal.clear().map_err(|e| Error::io(&file, e))?;
    }
    // Every sealed record is in the log or sled now, on the disk (synced above, or before this
    // open).
    for (_, path) in sealed {
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok((journal, recovered))
}

/// Puts write counter `generation` and, when given, `log_end` (where the log's whole groups end)
/// into sled's `meta` tree, never lowering either. The caller has synced the log up to there
/// first: sled also flushes on its own, and the counter says which journal records the log holds
/// (reopening skips them), so it must never reach the disk before those records do. What a
/// flush (`Flusher::persist`), the journal's redo and an open that finds the log ahead of sled
/// all do.
pub(crate) fn raise_log_counters(
    meta: &sled::Tree,
    generation: u64,
    log_end: Option<u64>,
) -> sled::Result<()> {
    let raise = |to: u64| {
        move |old: Option<&[u8]>| {
            let old = old.and_then(|v| <[u8; 8]>::try_from(v).ok()).map(u64::from_be_bytes);
            Some(old.unwrap_or(0).max(to).to_be_bytes().to_vec())
        }
    };
    meta.fetch_and_update(GENERATION_KEY, raise(generation))?;
    if let Some(at) = log_end {
        meta.fetch_and_update(LOG_END_KEY, raise(at))?;
    }
    Ok(())
}

/// How many bytes of records one sled batch applies at most when the log is folded into
/// `answers` (`Store::fold_log`): each sled batch seals an I/O buffer, and one batch of a whole
/// large log would hold it all in memory at once. (Small in unit tests, so a short log already
/// spans several batches.)
pub(crate) const REDO_BATCH_BYTES: usize = if cfg!(test) { 4096 } else { 8 * 1024 * 1024 };

/// How long `open` keeps trying while the store's lock is held. A store closed a moment ago can
/// still be locked briefly (sled's background flusher lets go of the file after the last handle
/// is dropped, and a child process being spawned holds inherited descriptors until it execs);
/// a store held by a running process stays locked, and then the error comes after this bound.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// File in the store directory naming the process that has the store open (`pid N: ims-vcr
/// SUBCOMMAND`), so another process refused by the lock can say who holds it. Only the program
/// and its subcommand are written: flags can carry secrets.
pub const HOLDER_FILE: &str = "ims-vcr-holder";

/// Notes this process as the store's holder (best effort: it only improves a message).
pub(crate) fn note_holder(path: &Path) {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "ims-vcr".into());
    let subcommand = args.next().filter(|a| !a.starts_with('-')).unwrap_or_default();
    let line = format!("pid {}: {program} {subcommand}", std::process::id());
    if let Err(e) = crate::storage::write_new(&path.join(HOLDER_FILE), line.trim_end().as_bytes()) {
        tracing::debug!(store = %path.display(), error = %e, "cannot note the store's holder");
    }
}

/// sled opens its files read-write (it has no read-only mode), and so do the journal and the log:
/// a file of the store at `path` that could not be written refuses the open before anything
/// changes, naming the file.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    let ours = [crate::storage::journal::JOURNAL_FILE, crate::storage::log_file::LOG_FILE];
    for name in crate::storage::closed::SLED_FILES.into_iter().chain(ours) {
        let file = path.join(name);
        // Not through a link at one of ims-vcr's own names (see `own_file`).
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if ours.contains(&name) {
            crate::storage::own_file(&mut options);
        }
        match options.open(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::store_io(path, file, e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Opens sled at `path`; `writer`: the store is opened to write (a larger cache).
pub(crate) fn open_db(path: &Path, writer: bool) -> Result<sled::Db> {
    let cache = if writer {
        WRITER_CACHE_BYTES
    } else {
        READER_CACHE_BYTES
    };
    let started = std::time::Instant::now();
    let mut cleared = false;
    loop {
        let attempt = std::time::SystemTime::now();
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(cache)
            .open();
        match result {
            // A snapshot sled was writing when the process was killed (`snap.<lsn>.generating`,
            // renamed to `snap.<lsn>` only once whole) reads as corruption, though everything
            // is in sled's log: it is removed, and sled opened again. Only one older than this
            // attempt: another process that met the same leftover may be writing a new one.
            Err(sled::Error::Corruption { .. })
                if !cleared && remove_partial_snapshots(path, attempt) =>
            {
                cleared = true;
            }
            result => match result.map_err(|e| open_error(path, e)) {
                Err(Error::StoreLocked { .. }) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => return other,
            },
        }
    }
}

/// Removes the snapshots sled left unfinished in `path` (`snap.<lsn>.generating`) last written
/// before `before`; whether it removed any.
fn remove_partial_snapshots(path: &Path, before: std::time::SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let partial = name
            .to_str()
            .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
            && entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified < before);
        if partial && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a snapshot sled never finished (a crash while writing it)");
            removed = true;
        }
    }
    removed
}

/// The error for the store at `path` held by another process, naming it when it noted itself.
pub(crate) fn locked(path: &Path) -> Error {
    Error::StoreLocked {
        path: path.to_owned(),
        holder: crate::storage::read_own(&path.join(HOLDER_FILE))
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h.len() < 200 && h.chars().all(|c| !c.is_control()))
            .unwrap_or_else(|| "an ims-vcr record, replay or export is running on it".into()),
    }
}

/// sled reports a held lock as a generic I/O error; recognise it to say what to do. sled pins
/// one version (0.34.7), so a store it calls unsupported has a damaged `conf` (or came from an
/// incompatible build).
pub(crate) fn open_error(path: &Path, source: sled::Error) -> Error {
    match source {
        _ if source.to_string().contains("could not acquire lock") => locked(path),
        // sled opens `conf` and `db` read-write (there is no read-only mode).
        sled::Error::Io(e) if matches!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ) =>
        {
            Error::store_io(path, path.to_owned(), e)
        }
        sled::Error::Unsupported(why) => Error::StoreDamaged {
            path: path.to_owned(),
            reason: format!(
                "sled cannot read its files ({why}); they were damaged, or written by an \
                 incompatible ims-vcr"
            ),
        },
        source => store_error(path, source),
    }
}

/// A sled error on the store at `path`; detected corruption says what to do about it.
pub(crate) fn store_error(path: &Path, source: sled::Error) -> Error {
    match source {
        sled::Error::Corruption { .. } => Error::StoreDamaged {
            path: path.to_owned(),
            reason: "sled found corrupted data in its files".into(),
        },
        source => Error::Store {
            path: path.to_owned(),
            source,
        },
    }
}

/// Writes `generation` into [`DURABLE_FILE`] (temporary file and rename: a crash leaves the old
/// value, which is always safe to check against). A failure only weakens damage detection, so it
/// is logged, not returned: the recording itself is on disk. (A few bytes: written in place,
/// also from async code.)
pub(crate) fn note_durable(dir: &Path, generation: u64) {
    let file = dir.join(DURABLE_FILE);
    let tmp = dir.join(format!("{DURABLE_FILE}.tmp"));
    let written = crate::storage::write_new(&tmp, format!("{generation}\n").as_bytes())
        .and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = written {
        tracing::warn!(file = %file.display(), error = %e, "cannot note the flushed write count; damage detection for this store is weaker");
    }
}

/// The last write counter known to be flushed, from [`DURABLE_FILE`] (0 when absent: a new store,
/// or one written before this check existed).
pub(crate) fn read_durable(store: &Path) -> Result<u64> {
    let file = store.join(DURABLE_FILE);
    match crate::storage::read_own(&file) {
        // What it holds instead is not shown: it is no count, and could be anything.
        Ok(text) => text.trim().parse().map_err(|_| {
            Error::StoreRefused(format!(
                "{}: expected a write count, found {} bytes that are none; if the store is \
                 otherwise fine, delete this file to skip the damage check once",
                file.display(),
                text.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(file, e)),
    }
}

