//! The file that holds a store's log (store format 3 and later): what recording wrote, in groups
//! of journal records appended one after another to [`LOG_FILE`], beside sled's files.
//!
//! Format 2 kept these groups in a sled tree. sled keeps every page of a tree it has read in
//! memory (a page larger than a quarter of its segment is a file of its own that its cache counts
//! at the size of a pointer, so it is never evicted), and a store's log is read whole as the
//! replay pack is rebuilt: replaying 100,000 recordings whose pack a recorder killed with `-9`
//! never wrote peaked at 160-175 MB and served its first answer after 230-280 ms. Read from a
//! plain file, a group costs one `pread` of its header and records into a buffer reused for the
//! next group, a value one `pread` of its own bytes, and the pages stay in the kernel's cache,
//! not the process.
//!
//! A group is `magic (4 bytes) ++ len (u32 LE) ++ CRC-32 of the records (u32 LE) ++ records`,
//! and its number is the byte it starts at. The CRC lets the whole log be read without each
//! record's own checksum (which a group whose CRC fails falls back to, naming the damaged
//! record).
//! Groups are written with `pwritev` at the end of the last whole one, under the store's lock,
//! one at a time. A group whose write a crash cut short held no answer that was sent (the group
//! commit sends them once the write returns): it is dropped as the store opens ([`Walk::torn`]);
//! with `--fsync` the journal holds its records, and its redo writes them again.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::reservation::Reservation;

/// File name of the log inside a store directory.
pub const LOG_FILE: &str = "ims-vcr-log";
/// How a group starts.
const MAGIC: [u8; 4] = *b"ivlg";
/// A group's header: magic, length, CRC-32.
pub(crate) const GROUP_HEAD: u64 = 12;
/// How much of the file a search for the next group after garbled bytes reads at a time.
const SEARCH_WINDOW: usize = 1 << 20;

/// The store's log file (reads and writes at explicit offsets, so it is shared as `&self`).
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    /// Disk space reserved ahead of appends (see `reservation.rs`).
    reservation: Reservation,
    /// How long the file was when a sync that finished began: no page before it has changed
    /// since ([`LogFile::sync_in_slices`] writes back from there; only that: every sync covers
    /// the whole file).
    synced: AtomicU64,
    /// How many groups were appended (for the group commit's tests).
    #[cfg(test)]
    pub(crate) appends: AtomicU64,
    /// Set by a test: every append fails with it, as on a full disk.
    #[cfg(test)]
    broken: std::sync::Mutex<Option<String>>,
}

/// One step of reading the log from some byte on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A whole group starts here: `len` bytes of records follow its header.
    Group { at: u64, len: u32 },
    /// Bytes `at..to` are no group (damaged): whatever recordings they held are lost. A whole
    /// group starts at `to`, or the file ends there.
    Garbled { at: u64, to: u64 },
    /// The file ends here, or in a group whose writing was cut short (see [`Walk::torn`]).
    End,
}

/// Where the log's groups are, read header by header ([`LogFile::walk`]).
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Where the next group goes: the end of the last whole group or of damaged bytes.
    pub end: u64,
    /// The last whole group, if any: where it starts and its length.
    pub last: Option<(u64, u32)>,
    /// Bytes from here to the end that are no whole group (see [`LogFile::walk`]).
    pub torn: Option<u64>,
    /// Damaged bytes past the flushed end that whole groups follow, kept (see
    /// [`LogFile::walk`]): where each run starts and ends.
    pub damaged: Vec<(u64, u64)>,
}

impl LogFile {
    /// Opens (creating) the log of the store in `dir`. A log it creates has its folder synced
    /// too, so the file's name survives a power loss: a flush notes in sled how long the log is,
    /// and a store whose log is missing or shorter than that is refused as damaged when it opens.
    /// Some file systems cannot sync a folder; that is a warning, as when the replay pack is
    /// deleted.
    pub fn open(dir: &Path) -> std::io::Result<LogFile> {
        let path = dir.join(LOG_FILE);
        let mut options = OpenOptions::new();
        crate::storage::own_file(options.read(true).write(true));
        let file = match options.clone().create_new(true).open(&path) {
            Ok(file) => {
                if let Err(e) = crate::storage::sync_folder(dir) {
                    tracing::warn!(store = %dir.display(), error = %e, "cannot sync the store folder after creating its log");
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => options.open(&path)?,
            Err(e) => return Err(e),
        };
        let reservation = Reservation::new(&file, &path);
        Ok(LogFile {
            file,
            path,
            reservation,
            synced: AtomicU64::new(0),
            #[cfg(test)]
            appends: AtomicU64::new(0),
            #[cfg(test)]
            broken: std::sync::Mutex::new(None),
        })
    }

    /// The file's path (for errors).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Writes `records` as the group at byte `at` (the end of the last whole group) and returns
    /// where the next group goes. On failure the file is cut back to `at` where it can be.
    pub fn append(&self, at: u64, records: &[u8]) -> std::io::Result<u64> {
        let len = u32::try_from(records.len())
            .map_err(|_| std::io::Error::other("a log group over 4 GiB"))?;
        let mut head = [0u8; GROUP_HEAD as usize];
        head[..4].copy_from_slice(&MAGIC);
        head[4..8].copy_from_slice(&len.to_le_bytes());
        head[8..].copy_from_slice(&crc32fast::hash(records).to_le_bytes());
        let end = at + GROUP_HEAD + u64::from(len);
        #[cfg(test)]
        if let Some(why) = self.broken.lock().expect("test lock").clone() {
            return Err(std::io::Error::other(why));
        }
        let written = self.write_group_at(&head, records, at);
        if let Err(e) = written {
            // A group cut short at the end is dropped when the store opens, whether or not this
            // cut succeeds. The cut also gives back what was reserved past `at`.
            self.reservation.before_cut();
            self.synced.fetch_min(at, Ordering::SeqCst);
            let _ = self.file.set_len(at);
            return Err(e);
        }
        self.reservation.ahead_of(end);
        #[cfg(test)]
        self.appends.fetch_add(1, Ordering::SeqCst);
        Ok(end)
    }

    /// Makes every later append fail with `why`, as on a full disk.
    #[cfg(test)]
    pub(crate) fn break_for_test(&self, why: &str) {
        *self.broken.lock().expect("test lock") = Some(why.to_owned());
    }

    /// Writes `head` and then `records` at byte `at`: on Linux one `pwritev` (the group commit
    /// writes a group for every few recordings), then, if the kernel took less, the rest.
    fn write_group_at(&self, head: &[u8], records: &[u8], at: u64) -> std::io::Result<()> {
        let done = self.pwritev(head, records, at)?;
        for (bytes, offset) in unwritten(done, head, records) {
            self.file.write_all_at(bytes, at + offset)?;
        }
        Ok(())
    }

    /// One `pwritev` of `head` and `records` at byte `at`: how many bytes the kernel took (0
    /// when interrupted).
    #[cfg(target_os = "linux")]
    fn pwritev(&self, head: &[u8], records: &[u8], at: u64) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let parts = [std::io::IoSlice::new(head), std::io::IoSlice::new(records)];
        let offset = libc::off_t::try_from(at)
            .map_err(|_| std::io::Error::other(format!("log offset {at} is past what pwritev takes")))?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, both slices outlive the
        // call, and the descriptor is this file's, open for writing.
        let done = unsafe {
            libc::pwritev(self.file.as_raw_fd(), parts.as_ptr().cast::<libc::iovec>(), 2, offset)
        };
        match usize::try_from(done) {
            Ok(done) => Ok(done),
            Err(_) => match std::io::Error::last_os_error() {
                e if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
                e => Err(e),
            },
        }
    }

    /// Elsewhere: nothing written here, [`LogFile::write_group_at`] writes it all.
    #[cfg(not(target_os = "linux"))]
    fn pwritev(&self, _head: &[u8], _records: &[u8], _at: u64) -> std::io::Result<usize> {
        Ok(0)
    }

    /// As the store is opened to be written: starts reserving disk space ahead of the log's end
    /// `end`, so that the first appends find some (see `reservation.rs`).
    pub fn reserve_ahead_of(&self, end: u64) {
        self.reservation.ahead_of(end);
    }

    /// Syncs the file's data to the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        let len = self.size()?;
        self.file.sync_data()?;
        self.synced.fetch_max(len, Ordering::SeqCst);
        Ok(())
    }

    /// Syncs the file's data as [`LogFile::sync`] does, after writing back what changed since
    /// the last sync a slice at a time (see `sliced_io.rs`): for a thread in the idle class, so
    /// that no one system call of its holds the CPU for long.
    pub fn sync_in_slices(&self) -> std::io::Result<()> {
        let from = self.synced.load(Ordering::SeqCst);
        crate::storage::sliced_io::write_back(&self.file, from, self.size()?)?;
        self.sync()
    }

    /// Empties the log (once sled holds what it held) and syncs that.
    pub fn clear(&self) -> std::io::Result<()> {
        self.cut(0)
    }

    /// Cuts the file at `at` (a group cut short there), and whatever was reserved past it.
    pub fn cut(&self, at: u64) -> std::io::Result<()> {
        self.reservation.before_cut();
        // Pages past `at` are gone; what is written there next has never been synced.
        self.synced.fetch_min(at, Ordering::SeqCst);
        self.file.set_len(at)?;
        self.file.sync_data()
    }

    /// `len` bytes from byte `at`, or an error when the file is shorter.
    pub fn read_at(&self, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; len];
        self.file.read_exact_at(&mut bytes, at)?;
        Ok(bytes)
    }

    /// The records of the group `len` bytes long at `at`, and whether its CRC holds (a copy of
    /// its own; see [`LogFile::group_into`] to read many).
    pub(crate) fn group(&self, at: u64, len: u32) -> std::io::Result<(Vec<u8>, bool)> {
        let mut buf = Vec::new();
        let (records, checked) = self.group_into(at, len, &mut buf)?;
        Ok((records.to_vec(), checked))
    }

    /// The records of the group `len` bytes long at `at`, and whether its CRC holds, read into
    /// `buf` with one `pread` of its header and records (`buf` is reused from group to group, so
    /// reading a whole log allocates no buffer per group).
    pub(crate) fn group_into<'b>(
        &self,
        at: u64,
        len: u32,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<(&'b [u8], bool)> {
        let whole = GROUP_HEAD as usize + len as usize;
        buf.clear();
        buf.resize(whole, 0);
        self.file.read_exact_at(buf, at)?;
        Ok(records_of(buf))
    }

    /// Every whole group's records, in order, with the byte each starts at (for tools and tests
    /// that look inside a store; the store reads them one at a time).
    #[cfg(any(test, feature = "internals"))]
    pub fn groups(&self) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
        let mut whole = Vec::new();
        each_group(self, self.size()?, |e| e, |read| {
            if let Read::Group(n, bytes, _) = read {
                whole.push((n, bytes.to_vec()));
            }
            Ok(())
        })?;
        Ok(whole)
    }

    /// What starts at byte `at` of a file `size` bytes long.
    pub(crate) fn step(&self, at: u64, size: u64) -> std::io::Result<Step> {
        if at >= size {
            return Ok(Step::End);
        }
        if let Some(len) = self.header_at(at, size)? {
            return Ok(Step::Group { at, len });
        }
        // A length garbled in the middle of the log also runs past its end: only bytes with no
        // whole group after them can be a write cut short.
        match self.next_group_after(at, size)? {
            Some(to) => Ok(Step::Garbled { at, to }),
            None if self.torn_at(at, size)? => Ok(Step::End),
            None => Ok(Step::Garbled { at, to: size }),
        }
    }

    /// Every group's place, and where the next goes, given `log_end`: where the groups that a
    /// flush synced end (the groups before it are read header by header; damage there is kept,
    /// and named when the log is read). Past it, with `journaled` (a journal holds every record
    /// written since that flush: `--fsync`, or an earlier ims-vcr), only an unbroken run of
    /// groups whose CRC holds is the log: the first thing after it that is not one (a group
    /// lost, cut short or garbled by a crash before the sync, even with whole groups after it,
    /// which a file system may keep out of order) starts [`Walk::torn`], every record from
    /// there on still in the journal. Without, the log is the only copy: only bytes with no
    /// whole group after them (a write a crash cut short, whose answers were never sent) start
    /// [`Walk::torn`]; damage with whole groups after it is kept ([`Walk::damaged`]) and named
    /// when the log is read, and the groups after it are the log's. Each group read past
    /// `log_end` whose CRC holds is handed to `verified` (its number and records), in order.
    pub(crate) fn walk(
        &self,
        log_end: u64,
        journaled: bool,
        mut verified: impl FnMut(u64, &[u8]),
    ) -> std::io::Result<Walk> {
        let size = self.size()?;
        let mut walk = Walk::default();
        let mut buf = Vec::new();
        let mut ahead = ReadAhead::default();
        loop {
            let at = walk.end;
            // Past `log_end` most groups are whole: read from a window of the file, many at a
            // time, rather than with two `pread`s each (the group commit writes a group for
            // every few recordings). Anything else takes the steps below.
            if at >= log_end
                && let Some((len, records)) = ahead.whole_group(self, at, size)?
            {
                verified(at, records);
                walk.last = Some((at, len));
                walk.end = at + GROUP_HEAD + u64::from(len);
                continue;
            }
            match self.step(at, size)? {
                Step::Group { len, .. } if at >= log_end => {
                    let (records, whole) = self.group_into(at, len, &mut buf)?;
                    if whole {
                        verified(at, records);
                        walk.last = Some((at, len));
                        walk.end = at + GROUP_HEAD + u64::from(len);
                        continue;
                    }
                    if !journaled && let Some(to) = self.next_group_after(at, size)? {
                        walk.damaged.push((at, to));
                        walk.end = to;
                        continue;
                    }
                }
                Step::Group { len, .. } => {
                    walk.last = Some((at, len));
                    walk.end = at + GROUP_HEAD + u64::from(len);
                    continue;
                }
                Step::Garbled { to, .. } if at < log_end => {
                    walk.end = to;
                    continue;
                }
                Step::Garbled { to, .. } if !journaled && to < size => {
                    walk.damaged.push((at, to));
                    walk.end = to;
                    continue;
                }
                Step::Garbled { .. } | Step::End => {}
            }
            walk.torn = (at < size).then_some(at);
            return Ok(walk);
        }
    }

    /// The length of the group whose header is at `at`, when a header is there and the group
    /// fits in the file (its CRC is not checked).
    fn header_at(&self, at: u64, size: u64) -> std::io::Result<Option<u32>> {
        if size - at < GROUP_HEAD {
            return Ok(None);
        }
        let head = self.read_at(at, GROUP_HEAD as usize)?;
        Ok(group_len(&head).filter(|len| at + GROUP_HEAD + u64::from(*len) <= size))
    }

    /// Whether the bytes from `at` to the end (no whole group among them) are a group whose
    /// writing was cut short: a header announcing more than the file holds, a header cut short,
    /// or the start of one followed by zeros (a file system's leftover).
    fn torn_at(&self, at: u64, size: u64) -> std::io::Result<bool> {
        let head = self.read_at(at, (size - at).min(GROUP_HEAD) as usize)?;
        let magic = head.iter().zip(MAGIC).take_while(|(a, b)| **a == *b).count();
        // The whole magic: whatever follows it does not fit (`step` read no group here).
        if magic == MAGIC.len() || magic == head.len() {
            return Ok(true);
        }
        let mut offset = at + magic as u64;
        while offset < size {
            let n = (size - offset).min(SEARCH_WINDOW as u64) as usize;
            if self.read_at(offset, n)?.iter().any(|b| *b != 0) {
                return Ok(false);
            }
            offset += n as u64;
        }
        Ok(true)
    }

    /// The first byte after `at` where a whole group with a good CRC starts.
    fn next_group_after(&self, at: u64, size: u64) -> std::io::Result<Option<u64>> {
        let finder = memchr::memmem::Finder::new(&MAGIC);
        let mut buf = Vec::new();
        let mut from = at + 1;
        while from < size {
            let n = (size - from).min(SEARCH_WINDOW as u64) as usize;
            let window = self.read_at(from, n)?;
            for found in finder.find_iter(&window) {
                let candidate = from + found as u64;
                if let Some(len) = self.header_at(candidate, size)?
                    && self.group_into(candidate, len, &mut buf)?.1
                {
                    return Ok(Some(candidate));
                }
            }
            if from + n as u64 >= size {
                break;
            }
            // The next window overlaps this one by the magic's length less one.
            from += (n as u64).saturating_sub(MAGIC.len() as u64 - 1).max(1);
        }
        Ok(None)
    }
}

/// The length of the records a group's header (its first [`GROUP_HEAD`] bytes) announces, when
/// it starts as a group does.
fn group_len(head: &[u8]) -> Option<u32> {
    let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    (head[..4] == MAGIC).then_some(len)
}

/// The records of a whole group (header and records), and whether its CRC holds.
fn records_of(group: &[u8]) -> (&[u8], bool) {
    let (head, records) = group.split_at(GROUP_HEAD as usize);
    let crc = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    (records, crc32fast::hash(records) == crc)
}

/// What is left to write of `head` followed by `records` once the first `done` bytes are
/// written: each part's bytes left and where they go (from the start of `head`).
fn unwritten<'a>(done: usize, head: &'a [u8], records: &'a [u8]) -> [(&'a [u8], u64); 2] {
    let in_head = done.min(head.len());
    let in_records = done.saturating_sub(head.len()).min(records.len());
    [
        (&head[in_head..], in_head as u64),
        (&records[in_records..], (head.len() + in_records) as u64),
    ]
}

/// Bytes of the log read ahead by [`LogFile::walk`]: a window of [`READ_AHEAD`] bytes from
/// `at`.
#[derive(Default)]
struct ReadAhead {
    at: u64,
    bytes: Vec<u8>,
}

/// How much of the log [`ReadAhead`] reads at a time.
const READ_AHEAD: usize = 1 << 20;

impl ReadAhead {
    /// The length and records of the group at byte `at` of `file` (`size` bytes long) when a
    /// whole one whose CRC holds starts there and fits in a window; `None` otherwise (no
    /// group, a damaged one, or one larger than a window: the caller reads it its own way).
    fn whole_group(
        &mut self,
        file: &LogFile,
        at: u64,
        size: u64,
    ) -> std::io::Result<Option<(u32, &[u8])>> {
        let Some(head) = self.read(file, at, GROUP_HEAD as usize, size)? else {
            return Ok(None);
        };
        let Some(len) = group_len(head) else {
            return Ok(None);
        };
        let whole = GROUP_HEAD + u64::from(len);
        if at + whole > size || whole > READ_AHEAD as u64 {
            return Ok(None);
        }
        let Some(group) = self.read(file, at, whole as usize, size)? else {
            return Ok(None);
        };
        let (records, crc_holds) = records_of(group);
        Ok(crc_holds.then_some((len, records)))
    }

    /// Bytes `at..at + len` of `file` (`size` bytes long), from the window, read anew from
    /// `at` when it does not hold them; `None` when the file ends before.
    fn read(
        &mut self,
        file: &LogFile,
        at: u64,
        len: usize,
        size: u64,
    ) -> std::io::Result<Option<&[u8]>> {
        if self.slice(at, len).is_none() {
            let ahead = (size.saturating_sub(at)).min(READ_AHEAD as u64) as usize;
            self.bytes.resize(ahead, 0);
            file.file.read_exact_at(&mut self.bytes, at)?;
            self.at = at;
        }
        Ok(self.slice(at, len))
    }

    /// Bytes `at..at + len` when the window holds them.
    fn slice(&self, at: u64, len: usize) -> Option<&[u8]> {
        let from = usize::try_from(at.checked_sub(self.at)?).ok()?;
        self.bytes.get(from..from.checked_add(len)?)
    }
}

/// What reading the log's file finds, in order ([`each_group`]).
pub(crate) enum Read<'a> {
    /// Group `n`'s records, and whether its CRC holds (else each record's checksum is checked).
    Group(u64, &'a [u8], bool),
    /// Bytes `at..to` that are no group.
    Garbled(u64, u64),
}

/// Hands the groups of `file` up to byte `end` (where the next group goes) to `visit`, in order,
/// each read into one buffer reused from group to group (see [`LogFile::group_into`]); stops at
/// the first error, `visit`'s or a read's (made an `E` by `read_err`).
pub(crate) fn each_group<E>(
    file: &LogFile,
    end: u64,
    read_err: impl Fn(std::io::Error) -> E,
    visit: impl FnMut(Read<'_>) -> Result<(), E>,
) -> Result<(), E> {
    each_group_from(file, 0, end, read_err, visit)
}

/// [`each_group`] from byte `from` (where a group starts) on.
pub(crate) fn each_group_from<E>(
    file: &LogFile,
    from: u64,
    end: u64,
    read_err: impl Fn(std::io::Error) -> E,
    mut visit: impl FnMut(Read<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let (mut at, mut buf) = (from, Vec::new());
    loop {
        match file.step(at, end).map_err(&read_err)? {
            Step::Group { at: n, len } => {
                let (bytes, checked) = file.group_into(n, len, &mut buf).map_err(&read_err)?;
                visit(Read::Group(n, bytes, checked))?;
                at = n + GROUP_HEAD + u64::from(len);
            }
            Step::Garbled { at: from, to } => {
                visit(Read::Garbled(from, to))?;
                at = to;
            }
            Step::End => return Ok(()),
        }
    }
}

/// The records of a group read from the log: each record's checksum is checked only when the
/// group's CRC failed.
pub(crate) fn records(bytes: &[u8], checked: bool) -> Vec<crate::storage::journal::Found> {
    match checked {
        true => crate::storage::journal::scan_checked(bytes),
        false => crate::storage::journal::scan(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Disk blocks `path` holds, in bytes.
    fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    /// Where the file system allocates at writeback (ext4, XFS: the temporary folder here), the
    /// log reserves disk space past its end without moving it: readers see the groups written
    /// and nothing after; a cut and dropping the handle give the rest back.
    #[test]
    fn the_log_reserves_space_ahead_without_moving_its_end_and_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path()).unwrap();
        let path = log.path().to_owned();
        let second = log.append(0, &[7u8; 5000]).unwrap();
        let end = log.append(second, b"second").unwrap();
        assert_eq!(log.size().unwrap(), end);
        let walk = log.walk(0, true, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.last, walk.torn), (end, Some((second, 6)), None));
        // ext4 or XFS whose `fallocate` works (not ext3 mounted as ext4, not a full disk).
        if !log.reservation.is_on() {
            assert_eq!(log.reservation.end(), 0);
            return;
        }
        assert!(log.reservation.end() > end);
        assert!(allocated(&path) >= log.reservation.end(), "{} reserved", allocated(&path));
        log.cut(second).unwrap();
        assert_eq!(log.reservation.end(), 0);
        assert!(allocated(&path) < 64 * 1024, "{} after the cut", allocated(&path));
        let end = log.append(second, b"again").unwrap();
        assert!(log.reservation.end() > end && allocated(&path) >= log.reservation.end());
        drop(log);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
        assert!(allocated(&path) < 64 * 1024, "{} after the drop", allocated(&path));
    }

    #[test]
    fn what_a_short_write_left_is_written_where_it_belongs() {
        let (head, records) = (b"head".as_slice(), b"records".as_slice());
        let whole = [head, records].concat();
        for done in 0..=whole.len() {
            let mut file = whole[..done].to_vec();
            file.resize(whole.len(), 0);
            for (bytes, at) in unwritten(done, head, records) {
                file[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
            }
            assert_eq!(file, whole, "{done} bytes written first");
        }
    }

    #[test]
    fn the_walk_reads_ahead_across_windows_and_past_groups_larger_than_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path()).unwrap();
        // The second group crosses the first window's end; the third is larger than a window.
        let groups: Vec<Vec<u8>> = [600_000, 600_000, 2 * READ_AHEAD, 10]
            .iter()
            .enumerate()
            .map(|(n, len)| vec![n as u8 + 1; *len])
            .collect();
        let mut at = 0;
        let mut starts = Vec::new();
        for group in &groups {
            starts.push(at);
            at = log.append(at, group).unwrap();
        }
        let mut verified = Vec::new();
        let walk = log.walk(0, false, |n, records| verified.push((n, records.to_vec()))).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = starts.iter().copied().zip(groups).collect();
        assert!(verified == expected, "every group read whole, once, in order");
        assert_eq!((walk.end, walk.torn), (at, None));
        assert!(walk.damaged.is_empty());
    }

    #[test]
    fn groups_are_read_back_where_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path()).unwrap();
        assert_eq!(log.walk(0, true, |_, _| {}).unwrap().end, 0);
        let second = log.append(0, b"first group").unwrap();
        let end = log.append(second, b"second").unwrap();
        let walk = log.walk(0, true, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.last, walk.torn), (end, Some((second, 6)), None));
        assert_eq!(log.group(second, 6).unwrap(), (b"second".to_vec(), true));
        assert_eq!(log.read_at(GROUP_HEAD + 6, 5).unwrap(), b"group");
    }

    #[test]
    fn a_group_cut_short_at_the_end_is_torn_and_garbled_bytes_before_a_group_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path()).unwrap();
        let end = log.append(0, b"whole").unwrap();
        // Cut inside the second group's records, inside its header, and zeros left after it.
        for cut in [end + GROUP_HEAD + 2, end + 3] {
            log.append(end, b"cut short").unwrap();
            log.file.set_len(cut).unwrap();
            let walk = log.walk(0, true, |_, _| {}).unwrap();
            assert_eq!((walk.end, walk.torn), (end, Some(end)), "cut at {cut}");
        }
        log.file.set_len(end + 4096).unwrap();
        assert_eq!(log.walk(0, true, |_, _| {}).unwrap().torn, Some(end));
        // Bytes that are no group, followed by a whole one, where a flush had synced the log:
        // damage (named when the log is read), and the group after it still read.
        log.file.set_len(end).unwrap();
        log.file.write_all_at(b"stray bytes", end).unwrap();
        let after = log.append(end + 11, b"after").unwrap();
        let size = log.size().unwrap();
        assert_eq!(log.step(end, size).unwrap(), Step::Garbled { at: end, to: end + 11 });
        let walk = log.walk(size, true, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.last, walk.torn), (after, Some((end + 11, 5)), None));
        // Past what a flush synced, the log ends at the first thing that is no whole group:
        // a crash may have kept a later group and lost an earlier one, whose records the
        // journal still holds.
        let walk = log.walk(end, true, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.last, walk.torn), (end, Some((0, 5)), Some(end)));
        // Without a journal (no `--fsync`) the log is the only copy: the damage is kept, named
        // when the log is read, and the group after it is the log's.
        let walk = log.walk(end, false, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.last, walk.torn), (after, Some((end + 11, 5)), None));
        assert_eq!(walk.damaged, [(end, end + 11)]);
        // Bytes that are no group at the very end: damage where synced, else cut short.
        log.file.write_all_at(b"more stray bytes", after).unwrap();
        let walk = log.walk(after + 16, true, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.torn), (after + 16, None));
        for journaled in [true, false] {
            let walk = log.walk(after, journaled, |_, _| {}).unwrap();
            assert_eq!((walk.end, walk.torn), (after, Some(after)), "journaled {journaled}");
        }
    }

    #[test]
    fn a_group_whose_records_changed_fails_its_crc() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path()).unwrap();
        log.append(0, b"records").unwrap();
        log.file.write_all_at(b"R", GROUP_HEAD).unwrap();
        assert_eq!(log.group(0, 7).unwrap(), (b"Records".to_vec(), false));
        let synced = log.walk(GROUP_HEAD + 7, true, |_, _| {}).unwrap();
        assert_eq!(synced.last, Some((0, 7)), "its length still holds: damage, named when read");
        for journaled in [true, false] {
            let unsynced = log.walk(0, journaled, |_, _| {}).unwrap();
            let walked = (unsynced.last, unsynced.torn);
            assert_eq!(walked, (None, Some(0)), "a write a crash cut short, journaled {journaled}");
        }
        // With a whole group after it, it is damage unless a journal holds its records.
        let after = log.append(GROUP_HEAD + 7, b"after").unwrap();
        let mut verified = Vec::new();
        let walk = log.walk(0, false, |n, records| verified.push((n, records.to_vec()))).unwrap();
        assert_eq!((walk.end, walk.last, walk.torn), (after, Some((GROUP_HEAD + 7, 5)), None));
        assert_eq!(walk.damaged, [(0, GROUP_HEAD + 7)]);
        assert_eq!(verified, [(GROUP_HEAD + 7, b"after".to_vec())]);
        let walk = log.walk(0, true, |_, _| {}).unwrap();
        assert_eq!((walk.end, walk.torn), (0, Some(0)));
    }
}
