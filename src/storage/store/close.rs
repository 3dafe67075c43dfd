//! Closing a store: sled's handles go first; a store closed with every write flushed leaves the
//! note that lets the next replay serve its pack without opening sled (`storage::closed`); then,
//! when the store was read whole (a replay pack rebuilt, an export), the memory that reading
//! took is handed back to the system.
//!
//! Reading every entry of a large store pages all of sled's tree through memory (about 150 MB
//! for 100,000 recordings). sled frees it when it closes, but the C allocator keeps freed pages
//! for reuse, so a replay that had to rebuild its pack would go on serving at that size. Handing
//! them back takes one `malloc_trim`, once sled no longer holds them.

use super::*;

impl Drop for Store {
    fn drop(&mut self) {
        let generation = self.written.load(Ordering::SeqCst);
        // Opened whole, every write flushed, none half-done, nothing left for a journal to redo
        // (a session lock poisoned by a panic says nothing of the sort).
        let clean = self.opened
            && self.session.get_mut().is_ok_and(|session| {
                session.poisoned.is_none() && session.journal.is_empty()
            })
            && self.flusher.flushed.load(Ordering::SeqCst) == generation;
        // SAFETY: each handle is dropped once, here, and the store is not used after `drop`.
        let flusher = unsafe {
            ManuallyDrop::drop(&mut self.answers);
            ManuallyDrop::drop(&mut self.meta);
            ManuallyDrop::take(&mut self.flusher)
        };
        // sled closes here unless a flush behind a sealed journal still holds it: then its files
        // may still change, and no note is left.
        let closed = std::sync::Arc::try_unwrap(flusher).map(drop).is_ok();
        if clean && closed {
            crate::storage::closed::note(&self.path, generation);
        }
        if self.read_whole.load(Ordering::Relaxed) {
            release_freed_memory();
        }
    }
}

/// Returns the allocator's free pages to the system (glibc keeps them otherwise).
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory that is free; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
