//! The store's write-ahead journal, for `--fsync`: how a recording reaches the disk, synced,
//! before its answer reaches the client without waiting for sled.
//!
//! sled buffers writes in the process and makes them durable only on `flush`, which costs a
//! disk sync and several thread hand-offs. With `--fsync` every recorded answer is first
//! appended to the journal file ([`JOURNAL_FILE`], beside sled's files), at once, and the
//! journal synced (one `fdatasync` for every answer written meanwhile) before the answers go
//! out, which survives a power loss; the store's log gathers the same records into groups,
//! written and synced later. Without `--fsync` nothing is written here: the log's file is the
//! only copy, its group written before the answers go out (group commit, see the store's
//! `commit.rs`), which a `kill -9` of the proxy cannot undo. An earlier ims-vcr wrote every
//! record here first in both cases, and what it left is read as below.
//!
//! When the store is opened, records newer than the store's write counter are applied to the
//! store's log in order and flushed, and the journal is emptied. The records at or below that
//! counter (the log holds them already) are passed over by their framing, without reading their
//! values or checking their checksums: a session killed under load leaves tens of megabytes of
//! them, and the open must not cost what reading them would. It is also emptied whenever a flush of
//! sled covers everything in it (end of session, import). In a long session, every [`COMPACT_AT`]
//! bytes, it is sealed: renamed aside (a name starting with [`SEALED_PREFIX`]) and started anew,
//! which takes a moment under the store's lock; the sled flush that makes the sealed records
//! redundant runs outside it, and deletes the sealed file when done. Opening a store reads the
//! sealed journals left by a crash that hold writes past the store's counter, oldest first,
//! before the current one; one the counter covers is deleted unread (`durability::recover`).
//!
//! A record is `len (u32 LE) ++ checksum (32 bytes) ++ payload`, the payload being the write
//! counter (u64 LE), the number of keys removed (u32 LE), those keys (36 bytes each), the key
//! inserted (36 bytes) and the value (the rest). The checksum finds a write the kernel never
//! completed and bytes changed since, not tampering: since store format 4 it is the CRC-32 of
//! the payload (u32 LE) followed by [`CRC_MARK`] (the SHA-256 of the payload it replaced was
//! about 2 % of record's CPU). Records written before (the SHA-256 of the payload, in journals
//! and logs an older ims-vcr left) are read and checked as they are: a SHA-256 whose last 28
//! bytes equal the mark would take about 2^224 tries. What the CRC-32 gives up: a record whose
//! header reached the disk whole and whose payload changed after (zeroed by a crash) passes with
//! a chance of 2^-32 rather than 2^-256; a burst of up to 32 changed bits never passes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// File name of the journal inside a store directory.
pub const JOURNAL_FILE: &str = "ims-vcr-journal";
/// Bytes written to the log (or the journal, `--fsync`) since the last flush past which a
/// recording session syncs the log and flushes sled behind it (sealing the journal).
pub const COMPACT_AT: u64 = 64 * 1024 * 1024;
/// Name prefix of a sealed journal (followed by the write counter it ends at, 20 digits): a
/// journal set aside by [`Journal::seal`] until a sled flush covers it, then deleted.
pub const SEALED_PREFIX: &str = "ims-vcr-journal.sealed-";
const HEAD: usize = 4 + 32;
const KEY: usize = 36;
/// What follows a record's CRC-32 in its checksum's 32 bytes (since store format 4): a record
/// without it has the SHA-256 of its payload there instead (see the module's documentation).
pub const CRC_MARK: &[u8; 28] = b"ims-vcr journal record crc32";

/// Whether `sum` (a record's 32 checksum bytes) is the checksum of `payload`: its CRC-32 and
/// [`CRC_MARK`], or (a record an older ims-vcr wrote) its SHA-256.
fn checksum_holds(sum: &[u8], payload: &[u8]) -> bool {
    match sum.split_at_checked(4) {
        Some((crc, mark)) if mark == CRC_MARK => crc == crc32fast::hash(payload).to_le_bytes(),
        _ => Sha256::digest(payload).as_slice() == sum,
    }
}

/// One journaled write: what it removed and inserted in sled's `answers` tree.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// The store's write counter after this write.
    pub generation: u64,
    /// Keys removed (the older answers a `record` session replaces).
    pub removes: Vec<[u8; KEY]>,
    /// Key inserted.
    pub key: [u8; KEY],
    /// Its value: the JSON of one interaction.
    pub value: Vec<u8>,
}

/// The open journal (appends only).
#[derive(Debug)]
pub struct Journal {
    file: std::sync::Arc<File>,
    path: PathBuf,
    len: u64,
    /// Set when a failed append could not be cut back: the file ends in part of a record, and
    /// another record after it would read as damage, so nothing more is appended.
    broken: Option<String>,
}

impl Journal {
    /// Opens (creating) the journal in `dir` and reads its records after write `done` (those
    /// at or below it are in the store's log already: passed over, see [`read_after`]). A
    /// damaged last record is a write the kernel never completed (its answer was never sent)
    /// and is left out; damage before the end is the inner error, naming the journal.
    pub fn open(dir: &Path, done: u64) -> std::io::Result<(Journal, Result<Vec<Record>, String>)> {
        let path = dir.join(JOURNAL_FILE);
        let mut file = crate::storage::own_file(OpenOptions::new().read(true).append(true).create(true)).open(&path)?;
        let (len, records) = read_after(&mut file, &path, done)?;
        let journal = Journal {
            file: std::sync::Arc::new(file),
            len,
            path,
            broken: None,
        };
        Ok((journal, records))
    }

    /// Appends one record with a single `write(2)`.
    #[cfg(test)]
    pub fn append(
        &mut self,
        generation: u64,
        removes: &[impl AsRef<[u8]>],
        key: &[u8; KEY],
        value: &[u8],
    ) -> std::io::Result<()> {
        self.write(&encode(generation, removes, key, value)?.0)
    }

    /// Appends `record` (made by [`encode`]) with a single `write(2)`.
    pub fn write(&mut self, record: &[u8]) -> std::io::Result<()> {
        if let Some(why) = &self.broken {
            return Err(std::io::Error::other(why.clone()));
        }
        if let Err(e) = (&*self.file).write_all(record) {
            // A short write (a full disk) must not leave half a record for later ones to
            // follow: that would read as damage.
            if let Err(cut) = self.file.set_len(self.len) {
                self.broken = Some(format!(
                    "an append failed ({e}) and its partial record could not be cut off \
                     ({cut}); not appending after it"
                ));
            }
            return Err(e);
        }
        self.len += record.len() as u64;
        Ok(())
    }

    /// Sets the journal aside as the sealed journal of write `generation` (every record in it
    /// is at or below that write) and starts an empty one; returns the sealed file's path. With
    /// `sync`, the sealed records and the folder's new entries are synced to the disk first
    /// (what `--fsync` promised them).
    pub fn seal(&mut self, generation: u64, sync: bool) -> std::io::Result<PathBuf> {
        if let Some(why) = &self.broken {
            return Err(std::io::Error::other(why.clone()));
        }
        if sync {
            self.file.sync_data()?;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let sealed = dir.join(format!("{SEALED_PREFIX}{generation:020}"));
        std::fs::rename(&self.path, &sealed)?;
        let file = crate::storage::own_file(OpenOptions::new().read(true).append(true).create(true)).open(&self.path)?;
        if sync {
            crate::storage::sync_folder(dir)?;
        }
        self.file = std::sync::Arc::new(file);
        self.len = 0;
        Ok(sealed)
    }

    /// Bytes in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the journal holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the journal (its records are all in flushed sled data).
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        self.broken = None;
        Ok(())
    }

    /// A handle for syncing outside the store's lock.
    pub fn file(&self) -> std::sync::Arc<File> {
        self.file.clone()
    }

    /// The journal's path, for messages.
    #[cfg(any(test, feature = "internals"))]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `dir` holds a journal with anything in it, or a sealed one: what a crashed session
/// left for the next open to redo (or to pass over).
pub fn any_left(dir: &Path) -> std::io::Result<bool> {
    let current = match std::fs::metadata(dir.join(JOURNAL_FILE)) {
        Ok(m) => m.len() > 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    Ok(current || !sealed(dir)?.is_empty())
}

/// The sealed journals in `dir`, oldest first: the write counter each ends at, and its path.
pub fn sealed(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let generation = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEALED_PREFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(generation) = generation {
            found.push((generation, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The records after write `done` of the sealed journal at `path` (as [`Journal::open`] reads
/// a journal).
pub fn read_sealed(path: &Path, done: u64) -> std::io::Result<Result<Vec<Record>, String>> {
    Ok(read_after(&mut File::open(path)?, path, done)?.1)
}

/// Reads the journal `file` (at `path`, for messages): its length, and its records after write
/// `done`. The records at or below `done` (the store's log holds them: a session killed before
/// it could empty its journal leaves tens of thousands) are passed over by their framing alone,
/// neither their values read into memory nor their checksums checked, as long as each one's write
/// follows the one before it; the last one passed over is checked (a length garbled into a
/// larger one would pass over what follows). From the first record that does not (a later
/// write, damage, a torn end) the rest is read and parsed as a whole journal is ([`parse`]).
fn read_after(
    file: &mut File,
    path: &Path,
    done: u64,
) -> std::io::Result<(u64, Result<Vec<Record>, String>)> {
    let len = file.metadata()?.len();
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, &*file);
    let mut at = 0u64;
    let mut last: Option<u64> = None;
    // Where the last record passed over starts: its checksum is checked once the passing over
    // ends (see below).
    let mut last_at = 0u64;
    let mut head = [0u8; HEAD + 12];
    while len - at >= head.len() as u64 {
        reader.read_exact(&mut head)?;
        let size = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as u64;
        let generation = u64::from_le_bytes(head[HEAD..HEAD + 8].try_into().expect("8 bytes"));
        let removes = u32::from_le_bytes(head[HEAD + 8..].try_into().expect("4 bytes")) as u64;
        let framed = (12 + KEY as u64 * (removes + 1)) <= size
            && at + (HEAD as u64) + size <= len
            && generation <= done
            && last.is_none_or(|last| generation == last + 1);
        if !framed {
            break;
        }
        reader.seek_relative(size as i64 - 12)?;
        last_at = at;
        at += HEAD as u64 + size;
        last = Some(generation);
    }
    drop(reader);
    // A length garbled into a larger one would pass over whatever it covers, up to the end of
    // the file: the last record passed over must read whole with its checksum, or it is read
    // again with the rest (and judged as a whole journal's record is).
    if last.is_some() {
        let mut record = vec![0u8; (at - last_at) as usize];
        file.seek(std::io::SeekFrom::Start(last_at))?;
        file.read_exact(&mut record)?;
        if record_at(&record).is_none_or(|(_, size)| size != record.len()) {
            at = last_at;
        }
    }
    let mut rest = Vec::new();
    file.seek(std::io::SeekFrom::Start(at))?;
    file.read_to_end(&mut rest)?;
    let records = parse(&rest, at as usize)
        .map(|(records, end)| {
            report_end(path, len, end);
            records
        })
        .map_err(|e| format!("{}: {e}", path.display()));
    Ok((len, records))
}

/// Every whole record in `bytes`, the journal from its byte `base` on (offsets in what is
/// returned count from the journal's start). An incomplete or garbled end (a write cut short,
/// zeros left by the file system) is dropped; a garbled record with a whole record anywhere
/// after it means answered recordings were lost, and is an error.
fn parse(bytes: &[u8], base: usize) -> Result<(Vec<Record>, End), String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        match record_at(&bytes[at..]) {
            Some((record, size)) => {
                records.push(record);
                at += size;
            }
            None if (at + 1..bytes.len()).any(|later| record_at(&bytes[later..]).is_some()) => {
                return Err(format!(
                    "the record at byte {} is garbled and whole records follow it: answered \
                     recordings were lost",
                    base + at
                ));
            }
            None => return Ok((records, End::classify(&bytes[at..], base + at))),
        }
    }
    Ok((records, End::Clean))
}

/// How the journal ends after its last whole record.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Nothing after it.
    Clean,
    /// A write cut short (fewer bytes than its header announces) or zeros the file system left:
    /// the write never completed, so its answer was never sent.
    Torn { offset: usize },
    /// A record of the length its header announces whose checksum fails: it was written whole,
    /// so its answer may have been served, and the bytes changed since. Damage, not a torn write.
    Damaged { offset: usize, len: usize },
}

impl End {
    fn classify(rest: &[u8], offset: usize) -> End {
        let announced = rest
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        match announced {
            _ if rest.iter().all(|b| *b == 0) => End::Torn { offset },
            Some(len) if len >= 12 + KEY && rest.len() >= HEAD.saturating_add(len) => {
                End::Damaged { offset, len }
            }
            _ => End::Torn { offset },
        }
    }
}

/// Says how the journal at `path` (`len` bytes) ended; a damaged last record is copied aside,
/// whole journal and all, as `ims-vcr-journal.damaged-N` next to it, since recovery empties the
/// journal.
fn report_end(path: &Path, len: u64, end: End) {
    match end {
        End::Clean => {}
        End::Torn { offset } => tracing::warn!(
            journal = %path.display(),
            offset,
            bytes = len - offset as u64,
            "the journal ends in an incomplete write; it was never answered and is dropped"
        ),
        End::Damaged { offset, len } => {
            let copy = (1..)
                .map(|n| path.with_file_name(format!("{JOURNAL_FILE}.damaged-{n}")))
                .find(|p| !p.exists())
                .expect("a free name");
            let kept = std::fs::copy(path, &copy);
            tracing::error!(
                journal = %path.display(),
                record_at_byte = offset,
                record_bytes = HEAD + len,
                copy = %copy.display(),
                copied = kept.is_ok(),
                "the journal's last record is complete but fails its checksum: it is damaged \
                 (an answered recording may be lost); it is not applied, and the journal is \
                 kept as the copy named here"
            );
        }
    }
}

/// The whole, checksummed record at the start of `bytes`, and its size.
fn record_at(bytes: &[u8]) -> Option<(Record, usize)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let payload = bytes.get(HEAD..HEAD.checked_add(len)?)?;
    let (generation, n, keys_end) = parts(payload)?;
    if !checksum_holds(&bytes[4..HEAD], payload) {
        return None;
    }
    let record = Record {
        generation,
        removes: (0..n).map(|i| key_in(payload, i)).collect(),
        key: key_in(payload, n),
        value: payload[keys_end..].to_vec(),
    };
    Some((record, HEAD + len))
}

/// One journal record: write `generation` removed `removes` and inserted `key` with `value`.
/// Returns the record's bytes and where `value` starts in them. The store's log keeps records
/// in this same encoding (see `storage::store::log`).
pub fn encode(
    generation: u64,
    removes: &[impl AsRef<[u8]>],
    key: &[u8; KEY],
    value: &[u8],
) -> std::io::Result<(Vec<u8>, usize)> {
    let len = 12 + KEY * (removes.len() + 1) + value.len();
    let len32 =
        u32::try_from(len).map_err(|_| std::io::Error::other("a journal record over 4 GiB"))?;
    let mut record = Vec::with_capacity(HEAD + len);
    record.extend_from_slice(&len32.to_le_bytes());
    record.extend_from_slice(&[0; 32]);
    record.extend_from_slice(&generation.to_le_bytes());
    record.extend_from_slice(&(removes.len() as u32).to_le_bytes());
    for old in removes {
        record.extend_from_slice(old.as_ref());
    }
    record.extend_from_slice(key);
    let value_at = record.len();
    record.extend_from_slice(value);
    let crc = crc32fast::hash(&record[HEAD..]);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    record[8..HEAD].copy_from_slice(CRC_MARK);
    Ok((record, value_at))
}

/// What [`scan`] finds in a run of records.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A whole record: its write, the keys it removed, the key it inserted, and where its value
    /// lies in the bytes scanned.
    Record {
        generation: u64,
        removes: Vec<[u8; KEY]>,
        key: [u8; KEY],
        value: std::ops::Range<usize>,
    },
    /// A record of the length its header gives whose checksum fails, at byte `at`: the key it
    /// seems to insert (the bytes are damaged, so it may be wrong), when it has one.
    Damaged { at: usize, key: Option<[u8; KEY]> },
    /// From byte `at` on, nothing reads as a record: the rest is lost.
    Garbled { at: usize },
}

/// Every record in `bytes`, a run of records with nothing else (a log group): unlike a
/// journal's end, damage anywhere is reported, and scanning goes on past a record whose length
/// holds.
pub fn scan(bytes: &[u8]) -> Vec<Found> {
    scan_with(bytes, true)
}

/// [`scan`] of records whose bytes are known to be as written (a log group whose CRC holds):
/// each record's checksum is not computed again.
pub fn scan_checked(bytes: &[u8]) -> Vec<Found> {
    scan_with(bytes, false)
}

fn scan_with(bytes: &[u8], verify: bool) -> Vec<Found> {
    let mut found = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let len = rest
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        let Some(payload) = len.and_then(|len| rest.get(HEAD..HEAD.checked_add(len)?)) else {
            found.push(Found::Garbled { at });
            break;
        };
        let parts = parts(payload);
        if verify && !checksum_holds(&rest[4..HEAD], payload) {
            let key = parts.map(|(_, removes, _)| key_in(payload, removes));
            found.push(Found::Damaged { at, key });
        } else if let Some((generation, removes, keys_end)) = parts {
            found.push(Found::Record {
                generation,
                removes: (0..removes).map(|i| key_in(payload, i)).collect(),
                key: key_in(payload, removes),
                value: at + HEAD + keys_end..at + HEAD + payload.len(),
            });
        } else {
            found.push(Found::Damaged { at, key: None });
        }
        at += HEAD + payload.len();
    }
    found
}

/// A payload's write counter, number of keys removed, and where its keys end: `None` when it
/// is too short for what it announces.
fn parts(payload: &[u8]) -> Option<(u64, usize, usize)> {
    if payload.len() < 12 + KEY {
        return None;
    }
    let generation = u64::from_le_bytes(payload[..8].try_into().ok()?);
    let n = u32::from_le_bytes(payload[8..12].try_into().ok()?) as usize;
    let keys_end = n.checked_add(1)?.checked_mul(KEY)?.checked_add(12)?;
    (keys_end <= payload.len()).then_some((generation, n, keys_end))
}

/// Key `i` of a payload [`parts`] read: the removed keys come first, then the key inserted.
fn key_in(payload: &[u8], i: usize) -> [u8; KEY] {
    let at = 12 + i * KEY;
    payload[at..at + KEY].try_into().expect("36 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link planted at the journal's name is not followed: the open fails, and the file it
    /// points at is left as it was (a reader clearing the journal truncated it).
    #[cfg(unix)]
    #[test]
    fn a_link_at_the_journals_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious.txt");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(JOURNAL_FILE)).unwrap();
        assert!(Journal::open(dir.path(), 0).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let log = dir.path().join(crate::storage::log_file::LOG_FILE);
        std::os::unix::fs::symlink(&target, &log).unwrap();
        assert!(crate::storage::log_file::LogFile::open(dir.path()).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        // The write count's file is not read through one either, and what it holds is never
        // shown.
        let durable = dir.path().join(crate::storage::durability::DURABLE_FILE);
        std::os::unix::fs::symlink(&target, &durable).unwrap();
        let refused = crate::storage::durability::read_durable(dir.path()).unwrap_err().to_string();
        assert!(!refused.contains("keep me"), "{refused}");
        std::fs::remove_file(&durable).unwrap();
        std::fs::write(&durable, "not a count\n").unwrap();
        let refused = crate::storage::durability::read_durable(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("expected a write count") && !refused.contains("not a count"), "{refused}");
    }

    fn key(b: u8) -> [u8; KEY] {
        [b; KEY]
    }

    fn write_three(dir: &Path) -> Vec<u8> {
        let (mut journal, records) = Journal::open(dir, 0).unwrap();
        assert!(records.unwrap().is_empty() && journal.is_empty());
        journal
            .append(1, &[] as &[&[u8]], &key(1), b"{\"a\":1}")
            .unwrap();
        journal.append(2, &[key(1)], &key(2), b"{\"b\":2}").unwrap();
        journal.append(3, &[] as &[&[u8]], &key(3), b"").unwrap();
        std::fs::read(dir.join(JOURNAL_FILE)).unwrap()
    }

    #[test]
    fn records_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_three(dir.path());
        let (journal, records) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(journal.len(), bytes.len() as u64);
        assert_eq!(
            records.unwrap(),
            vec![
                Record {
                    generation: 1,
                    removes: vec![],
                    key: key(1),
                    value: b"{\"a\":1}".to_vec()
                },
                Record {
                    generation: 2,
                    removes: vec![key(1)],
                    key: key(2),
                    value: b"{\"b\":2}".to_vec()
                },
                Record {
                    generation: 3,
                    removes: vec![],
                    key: key(3),
                    value: vec![]
                },
            ]
        );
    }

    #[test]
    fn a_torn_last_record_is_dropped_at_every_cut() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_three(dir.path());
        let two = parse(&bytes, 0).unwrap().0.len() - 1;
        let third_starts = bytes.len() - (HEAD + 12 + KEY);
        for cut in third_starts + 1..bytes.len() {
            let (records, end) = parse(&bytes[..cut], 0).unwrap();
            assert_eq!(records.len(), two, "cut at {cut}");
            assert!(matches!(end, End::Torn { .. }), "cut at {cut}: {end:?}");
        }
        // A garbled (not cut) last record is left out too, but as damage (see below).
        let mut garbled = bytes.clone();
        *garbled.last_mut().unwrap() ^= 1;
        assert_eq!(parse(&garbled, 0).unwrap().0.len(), two);
    }

    #[test]
    fn damage_before_the_end_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_three(dir.path());
        bytes[HEAD + 12 + KEY] ^= 1; // the first record's value
        let e = parse(&bytes, 0).unwrap_err();
        assert!(e.contains("byte 0 is garbled"), "{e}");
        let mut lying = write_three(tempfile::tempdir().unwrap().path());
        lying[..4].copy_from_slice(&u32::MAX.to_le_bytes()); // a length past the end
        let e = parse(&lying, 0).unwrap_err();
        assert!(e.contains("byte 0 is garbled"), "{e}");
        // Zeros after the last whole record (a file extended by a crash) are a torn end.
        let mut zeros = write_three(tempfile::tempdir().unwrap().path());
        zeros.extend_from_slice(&[0; 4096]);
        assert_eq!(parse(&zeros, 0).unwrap(), (parse(&write_three(tempfile::tempdir().unwrap().path()), 0).unwrap().0, End::Torn { offset: zeros.len() - 4096 }));
    }

    #[test]
    fn records_checked_with_a_sha256_by_an_older_ims_vcr_read_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_three(dir.path());
        // What store format 3 wrote: the SHA-256 of each payload in the checksum's 32 bytes.
        let mut at = 0;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            assert_eq!(&bytes[at + 8..at + HEAD], CRC_MARK, "written with the CRC-32");
            let sum = Sha256::digest(&bytes[at + HEAD..at + HEAD + len]);
            bytes[at + 4..at + HEAD].copy_from_slice(&sum);
            at += HEAD + len;
        }
        let (records, end) = parse(&bytes, 0).unwrap();
        assert_eq!((records.len(), end), (3, End::Clean));
        assert!(scan(&bytes).iter().all(|f| matches!(f, Found::Record { .. })));
        // A flipped bit is damage in either kind of record, mark included.
        let third = bytes.len() - (HEAD + 12 + KEY);
        for at in [third + 4, third + 20, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert_eq!(parse(&flipped, 0).unwrap().1, End::Damaged { offset: third, len: 12 + KEY });
            assert!(matches!(scan(&flipped)[2], Found::Damaged { .. }), "bit at {at}");
        }
    }

    #[test]
    fn clear_empties_the_file_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        write_three(dir.path());
        let (mut journal, records) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(records.unwrap().len(), 3);
        journal.clear().unwrap();
        journal.append(4, &[] as &[&[u8]], &key(4), b"x").unwrap();
        drop(journal);
        let records = Journal::open(dir.path(), 0).unwrap().1.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].generation, 4);
    }

    #[test]
    fn a_flipped_bit_in_the_last_whole_record_is_damage_kept_aside_not_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_three(dir.path());
        let third = bytes.len() - (HEAD + 12 + KEY);
        // In the CRC-32, in its mark, in the payload.
        for at in [third + 4, third + 20, third + HEAD, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            let (records, end) = parse(&flipped, 0).unwrap();
            assert_eq!(records.len(), 2);
            assert_eq!(end, End::Damaged { offset: third, len: 12 + KEY }, "bit at {at}");
        }
        // Opening such a journal keeps a copy of its bytes beside it.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(dir.path().join(JOURNAL_FILE), &flipped).unwrap();
        let (_, records) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(records.unwrap().len(), 2);
        let copy = dir.path().join(format!("{JOURNAL_FILE}.damaged-1"));
        assert_eq!(std::fs::read(copy).unwrap(), flipped);
    }

    #[test]
    fn records_the_log_holds_are_passed_over_by_their_framing_and_the_rest_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_three(dir.path());
        let path = dir.path().join(JOURNAL_FILE);
        let after = |done| Journal::open(dir.path(), done).unwrap().1;
        let generations = |records: Vec<Record>| records.iter().map(|r| r.generation).collect::<Vec<_>>();
        assert_eq!(generations(after(0).unwrap()), [1, 2, 3]);
        assert_eq!(generations(after(1).unwrap()), [2, 3]);
        assert_eq!(generations(after(3).unwrap()), [] as [u64; 0]);
        assert_eq!(generations(read_sealed(&path, 2).unwrap().unwrap()), [3]);
        // A record passed over is not read: damage in its value is the log's to find, not an
        // error here (its copy in the log has its own check). Only the last one passed over is
        // checked (see below).
        let mut flipped = bytes.clone();
        flipped[HEAD + 12 + KEY] ^= 1; // the first record's value
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(generations(after(2).unwrap()), [3]);
        for done in [0, 1] {
            let e = after(done).unwrap_err();
            assert!(e.contains("byte 0 is garbled"), "{e}");
        }
        // Damage after the records passed over is named at its byte in the whole journal.
        let second = HEAD + 12 + KEY + 7;
        let mut flipped = bytes.clone();
        flipped[second + HEAD + 12 + 2 * KEY] ^= 1; // the second record's value
        std::fs::write(&path, &flipped).unwrap();
        let e = after(1).unwrap_err();
        assert!(e.contains(&format!("byte {second} is garbled")), "{e}");
        // A length that no longer holds stops the passing over, and the rest reads as damage.
        let mut lying = bytes.clone();
        lying[..4].copy_from_slice(&(12 + KEY as u32 + 3).to_le_bytes());
        std::fs::write(&path, &lying).unwrap();
        let e = after(3).unwrap_err();
        assert!(e.contains("garbled"), "{e}");
        // A length garbled into one that covers the rest of the journal does not pass over the
        // records after it (they are above `done`): the record fails its checksum and is read
        // again with the rest, as damage with whole records after it.
        for grown in [bytes.len() - HEAD, 12 + KEY + 7 + 20] {
            let mut swallowing = bytes.clone();
            swallowing[..4].copy_from_slice(&(grown as u32).to_le_bytes());
            std::fs::write(&path, &swallowing).unwrap();
            let e = after(1).unwrap_err();
            assert!(e.contains("byte 0 is garbled"), "{grown}: {e}");
        }
        // Writes that do not follow each other are not passed over either.
        let mut gap = bytes.clone();
        gap[second + HEAD..second + HEAD + 8].copy_from_slice(&3u64.to_le_bytes());
        std::fs::write(&path, &gap).unwrap();
        let e = after(3).unwrap_err();
        assert!(e.contains(&format!("byte {second} is garbled")), "{e}");
        // A torn end after them is dropped, the journal's length kept.
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 3);
        std::fs::write(&path, &torn).unwrap();
        let (journal, records) = Journal::open(dir.path(), 1).unwrap();
        assert_eq!((generations(records.unwrap()), journal.len()), (vec![2], torn.len() as u64));
    }
}
