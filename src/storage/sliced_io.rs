//! File work a compaction does behind the server, cut into slices short enough that the thread
//! doing it gives its CPU back between them: writing a file's pages back before its sync, and
//! deleting a large file.
//!
//! A compaction's thread is in the idle scheduling class (`store/compact.rs`), and yet the
//! kernel's scheduler (EEVDF) hands it the CPU now and then, while the server's thread is busy,
//! for the rest of a tick: 4 ms at 250 Hz. One system call that works that long without
//! sleeping keeps it: an `fdatasync` that writes back the 64 MiB of log a compaction syncs, an
//! `unlink` that drops the 64 MiB of page cache a sealed journal holds. On a server given one
//! CPU, every request in flight then waited those 4 ms: traced under load, each compaction
//! (about one a second at 34,000 recordings a second) took the CPU two or three times so. In
//! slices of [`SLICE`] each call is about 0.2 ms of CPU, and the thread sleeps after each one
//! (on the disk, or for [`PAUSE`]), which gives the CPU back: record's p99 went from 1.8-3.2 to
//! 1.4-2.3 ms, side by side over 9 and 14 rounds (docs/performance.md).
//!
//! Nothing here is what makes a file durable: the caller's `fdatasync` after [`write_back`]
//! still is, and finds little left to do; where slices cannot be written back (not Linux, a file
//! system without `sync_file_range`), that sync does it all, as before.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

/// How much of a file one system call writes back or cuts off.
pub(crate) const SLICE: u64 = 1 << 20;
/// The sleep after each slice cut off a file being deleted (cutting waits on no disk).
const PAUSE: Duration = Duration::from_millis(1);

/// Writes back `file`'s changed pages from byte `from` to byte `to`, a slice at a time, each
/// slice's writes waited for before the next is started (so the thread sleeps between slices).
/// Where the file system cannot (not Linux, no `sync_file_range` for this file) nothing more is
/// done here: the caller's sync writes the rest, as it would have anyway. A write that failed
/// is an error: the kernel reports it once per file handle, so the sync after would not see it.
pub(crate) fn write_back(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // Slices start at multiples of SLICE, so pages are never split between two.
        let mut at = from / SLICE * SLICE;
        while at < to {
            let len = SLICE.min(to - at);
            let (Ok(offset), Ok(nbytes)) = (i64::try_from(at), i64::try_from(len)) else {
                return Ok(());
            };
            // SAFETY: a plain system call on a file descriptor `file` keeps open.
            let done = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, nbytes, flags) };
            if done != 0 {
                let e = std::io::Error::last_os_error();
                let unsupported = [libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP, libc::ESPIPE];
                if e.raw_os_error().is_some_and(|code| unsupported.contains(&code)) {
                    tracing::debug!(error = %e, "cannot write a file back in slices; its sync writes it whole");
                    return Ok(());
                }
                return Err(e);
            }
            at += len;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
    Ok(())
}

/// Deletes the file at `path`, first cutting it down from its end a slice at a time, with a
/// [`PAUSE`] after each cut. A crash part-way leaves the file there, shorter: only for a file
/// whose bytes are all redundant, read as whole records up to a cut-short end (a sealed
/// journal whose records the store holds on the disk). Once the file is gone from `path`
/// (someone else deleted it: a store's flush at the end of a session) the cutting stops.
/// A file that cannot be opened to be cut is deleted at once.
pub(crate) fn delete(path: &Path) -> std::io::Result<()> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => return std::fs::remove_file(path),
    };
    let mut len = file.metadata()?.len();
    while len > SLICE && path.exists() {
        len = (len - 1) / SLICE * SLICE;
        file.set_len(len)?;
        std::thread::sleep(PAUSE);
    }
    drop(file);
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_written_back_in_slices_is_written_back_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        file.write_all(&vec![7u8; (2 * SLICE + 5) as usize]).unwrap();
        // From the middle of a slice to past the next one.
        write_back(&file, SLICE / 2, 2 * SLICE + 5).unwrap();
        write_back(&file, 0, 0).unwrap();
        file.sync_data().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len() as u64, 2 * SLICE + 5);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn what_cannot_be_written_back_in_slices_is_left_to_the_sync_after() {
        // `sync_file_range` on a pipe fails with ESPIPE: not an error, the sync does it all.
        let (reader, _writer) = std::io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        write_back(&pipe, 0, 3 * SLICE).unwrap();
    }

    #[test]
    fn a_file_deleted_in_slices_is_gone_and_a_missing_one_is_named_not_found() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 10, SLICE, 3 * SLICE + 1] {
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, vec![1u8; len as usize]).unwrap();
            delete(&path).unwrap();
            assert!(!path.exists(), "{len} bytes");
        }
        let missing = delete(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
