//! Closing a store: sled's handles go first; a store closed with every write flushed leaves the
//! note that lets the next replay serve its pack without opening sled (`storage::closed`), after
//! opening sled once more when the session wrote, so that sled's snapshot covers its writes and
//! the next open need not read them back (see [`refresh_snapshot`]); then,
//! when the store was read whole (a replay pack rebuilt, an export), the memory that reading
//! took is handed back to the system.
//!
//! Reading every entry of a large store pages all of sled's tree through memory (about 150 MB
//! for 100,000 recordings). sled frees it when it closes, but glibc's allocator keeps freed pages
//! for reuse, so a replay that had to rebuild its pack would go on serving at that size. Handing
//! them back takes one `malloc_trim`, once sled no longer holds them (the binary's allocator,
//! mimalloc, hands them back by itself: see `src/main.rs`).

use super::*;

impl Drop for Store {
    fn drop(&mut self) {
        let generation = self.written.load(Ordering::SeqCst);
        // Opened whole, every write flushed, none half-done, nothing left for a journal to redo
        // (`--fsync`; a session lock poisoned by a panic says nothing of the sort).
        let clean = self.opened
            && self.session.get_mut().is_ok_and(|session| {
                session.poisoned.is_none() && session.journal.is_empty()
            })
            && self.flusher.flushed.load(Ordering::SeqCst) == generation;
        // sled returned an error (a full disk) that no flush begun since got over: dropping its
        // handles would flush, and that flush can wait forever for the write it lost, so the
        // process could never exit. They are let go of as they are (this process keeps sled's
        // lock on the store); every answer recorded is in the log's file (and with `--fsync`
        // the journal), which the next open reads, and no note of a clean close is left. A
        // store whose sled flushed after the error closes as any other (the write counter alone
        // cannot tell: an import's batch that sled failed is not counted).
        if self.flusher.unhealed() {
            tracing::warn!(
                store = %self.path.display(),
                "closing the store without sled's last flush (sled failed a write earlier): the \
                 answers recorded are in its log, and the next start reads them from there"
            );
            return;
        }
        // SAFETY: each handle is dropped once, here, and the store is not used after `drop`.
        let flusher = unsafe {
            ManuallyDrop::drop(&mut self.answers);
            ManuallyDrop::drop(&mut self.meta);
            ManuallyDrop::take(&mut self.flusher)
        };
        // sled closes here unless a flush behind a sealed journal still holds it: then its files
        // may still change, and no note is left.
        let closed = std::sync::Arc::try_unwrap(flusher).map(drop).is_ok();
        // A session that wrote leaves sled a snapshot that covers its writes, or the next open
        // would read them all back from sled's log (see `refresh_snapshot`); not while a panic
        // unwinds, when the next open does read them back.
        let refreshed = || {
            generation == self.opened_at
                || std::thread::panicking()
                || std::panic::catch_unwind(|| refresh_snapshot(&self.path, generation))
                    .unwrap_or(false)
        };
        if clean && closed && refreshed() {
            crate::storage::closed::note(&self.path, generation);
        }
        if self.read_whole.load(Ordering::Relaxed) {
            release_freed_memory();
        }
    }
}

/// Opens sled once more, at the close of a session that wrote: sled writes a snapshot only as it
/// opens, reading back its whole log past the last one, so this moves that read from the next
/// open (a replay's start-up with its pack rebuilt, on a 100,000-recording store: 182-401 ms
/// before, 53-87 ms after) to the close of the session that wrote the log (3 ms for a small
/// store, 115-137 ms for a 100,000-recording one). True when sled then reads its write counter
/// back as `generation`; false, and no note, otherwise (and when sled's files are gone: a store
/// moved or deleted meanwhile is not made again).
fn refresh_snapshot(path: &Path, generation: u64) -> bool {
    if !path.join("db").is_file() || !path.join("conf").is_file() {
        return false;
    }
    let started = std::time::Instant::now();
    let reopened = open_db(path, false).and_then(|db| {
        let meta = db.open_tree("meta").map_err(|e| store_error(path, e))?;
        let stored = meta.get(GENERATION_KEY).map_err(|e| store_error(path, e))?;
        Ok(stored.is_some_and(|v| v.as_ref() == generation.to_be_bytes()))
    });
    match reopened {
        Ok(whole) => {
            let ms = started.elapsed().as_millis();
            tracing::debug!(store = %path.display(), whole, ms, "sled's snapshot refreshed");
            whole
        }
        Err(e) => {
            tracing::debug!(store = %path.display(), error = %e, "cannot refresh sled's snapshot");
            false
        }
    }
}

/// Returns the allocator's free pages to the system, where the allocator is glibc's (the
/// library's default, which keeps them otherwise). The `ims-vcr` binary allocates with
/// mimalloc, set to return freed pages at once (100 ms later or more under `record` and
/// `passthrough`: `src/main.rs`): there this trims only glibc's own, nearly unused heap.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory that is free; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
