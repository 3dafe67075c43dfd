//! Closing a store: sled's handles go first, then, when the store was read whole (a replay
//! pack rebuilt, an export), the memory that reading took is handed back to the system.
//!
//! Reading every entry of a large store pages all of sled's tree through memory (about 150 MB
//! for 100,000 recordings). sled frees it when it closes, but the C allocator keeps freed pages
//! for reuse, so a replay that had to rebuild its pack would go on serving at that size. Handing
//! them back takes one `malloc_trim`, once sled no longer holds them.

use super::*;

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: each handle is dropped once, here, and the store is not used after `drop`.
        unsafe {
            ManuallyDrop::drop(&mut self.answers);
            ManuallyDrop::drop(&mut self.meta);
            ManuallyDrop::drop(&mut self.flusher);
        }
        if self.read_whole.load(Ordering::Relaxed) {
            release_freed_memory();
        }
    }
}

/// Returns the allocator's free pages to the system (glibc keeps them otherwise).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory that is free; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
