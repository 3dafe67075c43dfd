//! Disk space reserved ahead of a file's appends, in the background: the store's log
//! (`log_file.rs`) keeps some reserved past its end, so that its appends need not allocate.
//!
//! Why: ext4 and XFS allocate a file's blocks when its pages are written back. A long session's
//! compaction syncs the log (`store/compact.rs`), and that writeback holds the file's block-map
//! lock (ext4's `i_data_sem`) while it allocates, at times waiting for the disk to read
//! allocation bitmaps; every append meanwhile waited for that lock in `pwrite`, for 1-5 ms, with
//! the store's lock held, so every recording stalled (record's p99, see
//! docs/performance-history.md, Twenty-second pass). Writing into space already allocated takes
//! no such lock.
//!
//! Reserving allocates, and may itself wait for the disk (11.6 ms once, with the store's lock
//! held, when the append did it): so it runs on a thread of its own, ahead of need. Once less
//! than a chunk (a quarter of the file, 4 to 64 MiB) is reserved past the end of an append, a
//! thread reserves up to two chunks past it (`fallocate` with `FALLOC_FL_KEEP_SIZE`: the file's
//! size, and so what readers see, does not change), 4 MiB per call. That moves the wait rather
//! than removing it: `fallocate` holds the file's inode lock, so an append that comes while one
//! piece is being reserved waits for that piece (one wait of 14 ms seen in 5 s). An append that
//! outruns the reservation writes where nothing is reserved yet, as every append did before.
//! Only on ext4 and XFS (not on tmpfs, where a reservation would be memory); a reservation that
//! fails (no `fallocate`, a disk too full for the margin) turns reserving off for the file's
//! handle, and what it may have reserved is given back at the next append. What is left
//! reserved past the end is given back when the reservation is dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// The least a chunk is...
const CHUNK_MIN: u64 = 4 << 20;
/// ...and the most (in between: a quarter of the file).
const CHUNK_MAX: u64 = 64 << 20;
/// What one `fallocate` reserves at most.
const PIECE: u64 = 4 << 20;

/// Space reserved past the end of one file's appends (see the module's doc).
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The file (its own descriptor), for the reserving thread and the give-back; `None` when
    /// it could not be had (then nothing is reserved).
    file: Option<Arc<File>>,
    path: PathBuf,
    state: Arc<State>,
    /// The reservation under way, if any.
    running: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct State {
    /// Whether appends reserve: on ext4 and XFS, until a reservation fails.
    on: AtomicBool,
    /// Where the space reserved ends (0: none since the file was last cut).
    end: AtomicU64,
    /// Whether any reservation was begun: then dropping gives back what is past the file's end.
    begun: AtomicBool,
    /// Set when a reservation failed, until what it may have reserved is given back.
    failed: AtomicBool,
}

impl Reservation {
    /// A reservation for `file` (at `path`, for messages): reserving only where the file system
    /// allocates at writeback and the descriptor can be shared with a thread.
    pub(crate) fn new(file: &File, path: &Path) -> Reservation {
        let file = file.try_clone().ok();
        let on = file.as_ref().is_some_and(allocates_at_writeback);
        Reservation {
            file: file.map(Arc::new),
            path: path.to_owned(),
            state: Arc::new(State {
                on: AtomicBool::new(on),
                end: AtomicU64::new(0),
                begun: AtomicBool::new(false),
                failed: AtomicBool::new(false),
            }),
            running: Mutex::new(None),
        }
    }

    /// After an append that ended at `end`, the file's end (or as the file is opened to be
    /// written, at its end); called by the file's one writer, so nothing appends meanwhile.
    /// When less than a chunk is reserved past `end` and no reservation is under way, starts
    /// one up to two chunks past it. After a reservation failed, gives back what it may have
    /// reserved instead (a failing `fallocate` keeps what it allocated before it failed, which
    /// on a nearly full disk is space the journal and sled need).
    pub(crate) fn ahead_of(&self, end: u64) {
        let Some(file) = &self.file else {
            return;
        };
        if !self.state.on.load(Ordering::SeqCst) {
            if self.state.failed.swap(false, Ordering::SeqCst) {
                self.settle();
                // A cut at the file's own size (`end`, read again rather than trusted): nothing
                // else appends to it meanwhile, so the cut loses nothing.
                if let Err(e) = file.metadata().and_then(|m| file.set_len(m.len())) {
                    tracing::debug!(file = %self.path.display(), error = %e, "cannot give back the disk space reserved");
                }
            }
            return;
        }
        let chunk = (end / 4).clamp(CHUNK_MIN, CHUNK_MAX);
        if self.state.end.load(Ordering::Acquire) >= end + chunk {
            return;
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.as_ref().is_some_and(|thread| !thread.is_finished()) {
            return;
        }
        // Read again: the thread that just finished may have moved it.
        let reserved = self.state.end.load(Ordering::Acquire);
        if reserved >= end + chunk {
            return;
        }
        let (from, to) = (reserved.max(end), end + 2 * chunk);
        let (file, state, path) = (Arc::clone(file), Arc::clone(&self.state), self.path.clone());
        self.state.begun.store(true, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("ims-vcr-reserve".into())
            .spawn(move || {
                // In pieces: `fallocate` holds the file's inode lock, which an append waits
                // for, while it allocates (and reads allocation bitmaps from the disk).
                let mut at = from;
                while at < to {
                    let piece = (to - at).min(PIECE);
                    if let Err(e) = reserve(&file, at, piece) {
                        tracing::debug!(file = %path.display(), error = %e, "not reserving disk space ahead of appends");
                        state.failed.store(true, Ordering::SeqCst);
                        state.on.store(false, Ordering::SeqCst);
                        return;
                    }
                    at += piece;
                    state.end.fetch_max(at, Ordering::Release);
                }
            });
        match spawned {
            Ok(thread) => *running = Some(thread),
            Err(_) => self.state.on.store(false, Ordering::Relaxed),
        }
    }

    /// Waits for the reservation under way, if any.
    pub(crate) fn settle(&self) {
        let thread = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Before the file is cut: waits for the reservation under way (which would reserve past
    /// the cut again), and forgets what was reserved (a cut gives it back).
    pub(crate) fn before_cut(&self) {
        self.settle();
        self.state.end.store(0, Ordering::Relaxed);
    }

    /// Where the space reserved ends (0: none).
    #[cfg(test)]
    pub(crate) fn end(&self) -> u64 {
        self.settle();
        self.state.end.load(Ordering::Relaxed)
    }

    /// Whether appends reserve.
    #[cfg(test)]
    pub(crate) fn is_on(&self) -> bool {
        self.settle();
        self.state.on.load(Ordering::Relaxed)
    }
}

impl Drop for Reservation {
    /// Gives back the space reserved past the file's end: cutting a file at its own size frees
    /// the blocks reserved beyond it. Only when a reservation was begun (the store's writer;
    /// it drops its log while it still holds sled's lock on the store, see `Flusher`, so no
    /// other writer's append can come between reading the size and the cut). A process killed,
    /// or a store let go of without closing sled (a failed sled write), leaves the reservation:
    /// the next writer's gives it back when it is dropped.
    fn drop(&mut self) {
        self.settle();
        let Some(file) = self.file.as_ref().filter(|_| self.state.begun.load(Ordering::Relaxed)) else {
            return;
        };
        if let Err(e) = file.metadata().and_then(|m| file.set_len(m.len())) {
            tracing::debug!(file = %self.path.display(), error = %e, "cannot give back the disk space reserved");
        }
    }
}

/// Whether `file` is on a file system that allocates blocks when pages are written back (ext4,
/// XFS), where reserving space ahead of appends pays. Not on tmpfs, where it would be memory.
#[cfg(target_os = "linux")]
fn allocates_at_writeback(file: &File) -> bool {
    use std::os::fd::AsRawFd as _;
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `fstatfs` writes a `statfs` for an open descriptor into the buffer given.
    let read = unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) };
    if read != 0 {
        return false;
    }
    // SAFETY: `fstatfs` returned 0, so it filled the buffer (zeroed before, in any case).
    // Compared as u64: `f_type` and the constants differ in type between C libraries (glibc:
    // both `c_long`; musl: `f_type` is `c_ulong`).
    let kind = unsafe { fs.assume_init() }.f_type as u64;
    kind == libc::EXT4_SUPER_MAGIC as u64 || kind == libc::XFS_SUPER_MAGIC as u64
}

#[cfg(not(target_os = "linux"))]
fn allocates_at_writeback(_file: &File) -> bool {
    false
}

/// Reserves `len` bytes of disk for `file` from byte `at`, the file's size unchanged.
#[cfg(target_os = "linux")]
fn reserve(file: &File, at: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let offset = libc::off_t::try_from(at).map_err(std::io::Error::other)?;
    let len = libc::off_t::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: `fallocate` on an open descriptor; it reads no memory of this process.
    let done = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
    match done {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve(_file: &File, _at: u64, _len: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// Disk blocks `path` holds, in bytes.
    fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    const MIB: u64 = 1 << 20;

    /// A file in `dir` holding `bytes`, and a reservation for it.
    fn appended(dir: &Path, bytes: &[u8]) -> (PathBuf, File, Reservation) {
        let path = dir.join("appended");
        let mut file = File::create(&path).unwrap();
        file.write_all(bytes).unwrap();
        let reservation = Reservation::new(&file, &path);
        (path, file, reservation)
    }

    /// A reservation stays between one and two chunks ahead of the appends it is told of, in
    /// the background, without changing the file's size; dropped, it gives back what is past
    /// the end. Where the file system does not allocate at writeback, nothing is reserved.
    #[test]
    fn space_is_reserved_a_chunk_or_two_ahead_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _file, reservation) = appended(dir.path(), &[1u8; 5000]);
        reservation.ahead_of(5000);
        if !reservation.is_on() {
            assert_eq!(reservation.end(), 0);
            return;
        }
        // Two chunks of the least size past the end.
        assert_eq!(reservation.end(), 5000 + 8 * MIB);
        assert!(allocated(&path) >= 5000 + 8 * MIB, "{}", allocated(&path));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5000);
        // More than a chunk still ahead: nothing more.
        reservation.ahead_of(3 * MIB);
        assert_eq!(reservation.end(), 5000 + 8 * MIB);
        // Less: two chunks past the end again; then a quarter of the file once that is more
        // than the least chunk (each only while the disk has room for it).
        for (end, reserved) in [(5 * MIB, 13 * MIB), (40 * MIB, 60 * MIB)] {
            reservation.ahead_of(end);
            if !reservation.is_on() {
                return;
            }
            assert_eq!(reservation.end(), reserved);
        }
        reservation.before_cut();
        assert_eq!(reservation.end(), 0);
        drop(reservation);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5000);
        assert!(allocated(&path) < 64 * 1024, "{} after the drop", allocated(&path));
    }

    /// After a reservation failed part-way (a nearly full disk: `fallocate` keeps what it
    /// allocated before it failed, here reserved by hand), the next append gives it back.
    #[test]
    fn what_a_failed_reservation_kept_is_given_back_at_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file, reservation) = appended(dir.path(), &[1u8; 5000]);
        if !reservation.is_on() || reserve(&file, 5000, 4 * MIB).is_err() {
            return;
        }
        reservation.state.begun.store(true, Ordering::SeqCst);
        reservation.state.failed.store(true, Ordering::SeqCst);
        reservation.state.on.store(false, Ordering::SeqCst);
        assert!(allocated(&path) >= 4 * MIB);
        reservation.ahead_of(5000);
        assert!(allocated(&path) < 64 * 1024, "{} after the append", allocated(&path));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5000);
        // Once: reserving stays off.
        reservation.ahead_of(5000);
        assert_eq!(reservation.end(), 0);
    }

    /// A reservation never begun gives nothing back: a reader's handle never cuts the file.
    #[test]
    fn a_reservation_never_begun_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file, reservation) = appended(dir.path(), b"bytes");
        // Space reserved past the end by another handle (the writer's) stays.
        if !allocates_at_writeback(&file) || reserve(&file, 5, 4 * MIB).is_err() {
            return;
        }
        let reserved = 4 * MIB;
        drop(reservation);
        assert!(allocated(&path) >= reserved);
    }
}
