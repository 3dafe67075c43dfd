//! The store's log: recordings appended in groups, over the `answers` tree (store format 2 kept
//! the groups in sled's `log` tree, format 3 in a file of their own, [`LogFile`]).
//!
//! One sled insert costs about the same whatever it holds and wherever it lands (tens of
//! microseconds: sled's log reservation, page table and delta chain), which made it half of what
//! a recorded request cost. So a recording does not insert into `answers`: its record (the
//! journal's encoding, see [`journal::encode`]) is gathered in memory and appended to the log
//! file as one group with the records gathered with it, before any of their answers is sent
//! (the group commit, `commit.rs`), or once [`GROUP_RECORDS`] records or [`GROUP_BYTES`] bytes
//! are together; a group's number is the byte it starts at (so groups are in write order).
//! Opening the store reads the groups written since the last flush (a sync of the log and a
//! flush of sled) whole; with `--fsync`, the journal also holds each record, synced, until a
//! flush covers it.
//!
//! The store's content is `answers` (what imports, re-keying and format-1 stores wrote) with
//! the log's records applied over it in order: each removes its keys and inserts its key. Readers
//! see that merged view ([`Store::entries`], [`Store::answers_of`]); a writer asks it which
//! answers a request already has. It is kept as an index of every key the log touched
//! ([`Overlay`]: where its value lies, or that it was removed), read from the log the first
//! time it is needed and then kept up to date by each write. A batch write (import, new match
//! rules) first folds the log into `answers` ([`Store::fold_log`]). Applying the same records
//! twice gives what applying them once gives (each key ends with the last write to it), so a
//! crash part-way through a fold, or a redo of records a group already holds, loses nothing.
//!
//! Records keep their checksums in the log: a damaged record is named (by its group and byte)
//! and its request left out whole, and the rest of the store is read.

use std::collections::{BTreeMap, HashSet};

use sled::IVec;

use super::*;
use crate::storage::journal::{self, Found};
use super::overlay::{Damage, Loc, Overlay, Walked};
use crate::storage::log_file::{GROUP_HEAD, LogFile, Read, each_group, records};

/// A group is appended to the log's file once it holds this many records...
pub(super) const GROUP_RECORDS: usize = 32;
/// ...or this many bytes, whichever comes first.
pub(super) const GROUP_BYTES: usize = 256 * 1024;

/// Whether a group of `records` records, `bytes` bytes long, is full.
fn full(records: usize, bytes: usize) -> bool {
    records >= GROUP_RECORDS || bytes >= GROUP_BYTES
}

/// The log's state, kept under the store's session lock.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// The number the group being gathered will be written under: the byte of the log file it
    /// will start at.
    next: u64,
    /// Records gathered for that group (journal encoding), not in sled yet.
    pending: Vec<u8>,
    pending_records: usize,
    /// Read the first time it is needed (see the module's doc).
    overlay: Option<Overlay>,
    /// Whether `answers` is empty (a new store, or one recorded only in format 2): a writer
    /// then never looks there.
    pub(super) base_empty: bool,
    /// Bytes of the file, from where a group cut short starts to the file's end, that were
    /// whole groups once (see [`Log::open`]).
    cut_short: Option<(u64, u64)>,
    /// What opening read of the log, for the index (taken when it is read).
    walked: Option<Walked>,
    /// Where the log ended when the last flush began (see [`Log::unflushed`]).
    flushing_from: u64,
}

impl Log {
    /// The log kept in `file`, and the highest write its last group holds (0 when empty). What
    /// follows the last whole group past `log_end` (where the groups a flush synced end) is a
    /// write a crash cut short (see [`LogFile::walk`]; none of its answers was sent, and with
    /// `--fsync` the journal holds its records): it is cut off, so the next group goes there.
    /// Before `log_end` the groups were whole on the disk: a file that ends in part of one there
    /// keeps it, as damage named when the log is read.
    ///
    /// `journaled`: a journal holds every record written since that flush (see
    /// [`LogFile::walk`]); without, damage past `log_end` that whole groups follow is kept, and
    /// named (here, and when the log is read).
    pub(super) fn open(
        file: &LogFile,
        base_empty: bool,
        log_end: u64,
        journaled: bool,
    ) -> std::io::Result<(Log, u64)> {
        // The groups the walk reads whole (past `log_end`) are kept for the index.
        let mut walked = Walked::default();
        let mut walk = file.walk(log_end, journaled, |n, records| walked.read(n, records))?;
        for (at, to) in &walk.damaged {
            tracing::warn!(
                log = %file.path().display(),
                at,
                to,
                "the store's log holds damaged bytes written since its last flush, with whole \
                 groups after them (a disk or file system fault): the recordings they held are \
                 lost, and named as damage when the store is read; record those requests again"
            );
        }
        let mut cut_short = None;
        if let Some(at) = walk.torn.filter(|at| *at < log_end) {
            let len = file.size()?;
            cut_short = Some((at, len));
            walk.end = len;
        } else if let Some(at) = walk.torn {
            // An answer goes out only once its group is whole: a `kill -9` cuts short only a
            // group none of whose answers went out. Without a journal, a group whose length fits
            // but whose CRC fails is dropped too (a power loss leaves zeros there, a disk fault
            // changed bytes): up to one group's recordings, said here.
            let what = match journaled {
                true => "a crash while they were written; they are dropped, and the journal's \
                         recordings redone",
                false => "a crash while they were written, whose answers never went out; or a \
                          power loss or disk fault since: they are dropped",
            };
            tracing::warn!(
                log = %file.path().display(),
                at,
                "the store's log ends in bytes written since its last flush that are no whole \
                 group ({what})"
            );
            file.cut(at)?;
        }
        let mut last_write = 0;
        if let Some((at, len)) = walk.last {
            let (group, _) = file.group(at, len)?;
            for found in journal::scan(&group) {
                if let Found::Record { generation, .. } = found {
                    last_write = last_write.max(generation);
                }
            }
        }
        let log = Log {
            base_empty,
            next: walk.end,
            flushing_from: walk.end,
            cut_short,
            walked: Some(walked),
            ..Log::default()
        };
        Ok((log, last_write))
    }

    /// Adds `record` (from [`journal::encode`], its value at `value_at`), which removes
    /// `removes` and inserts `key`; appends the group to `file` once it is full.
    pub(crate) fn append(
        &mut self,
        file: &LogFile,
        record: Vec<u8>,
        value_at: usize,
        removes: &[[u8; 36]],
        key: &[u8; 36],
    ) -> std::io::Result<()> {
        let start = self.pending.len();
        let record_len = record.len();
        // The first record of a group becomes its buffer when the buffer kept from the group
        // before is too small for it (a large answer is not copied); otherwise that buffer is
        // reused, so a group's buffer is not grown again, copy after copy, for every group.
        if self.pending.is_empty() && self.pending.capacity() < record.len() {
            self.pending = record;
        } else {
            self.pending.extend_from_slice(&record);
        }
        self.pending_records += 1;
        if let Some(overlay) = &mut self.overlay {
            overlay.heal(removes, key);
            for old in removes {
                overlay.keys.insert(*old, Loc::Removed);
            }
            let at = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
            overlay.keys.insert(
                *key,
                Loc::At {
                    group: self.next,
                    start: at(start + value_at),
                    end: at(start + record_len),
                },
            );
        }
        if full(self.pending_records, self.pending.len()) {
            self.write_pending(file)?;
        }
        Ok(())
    }

    /// Appends the records gathered so far to `file` as a group (nothing when there are none).
    pub(crate) fn write_pending(&mut self, file: &LogFile) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.next = file.append(self.next, &self.pending)?;
        self.pending.clear();
        // A group that held a large answer does not keep its memory for the small ones after.
        if self.pending.capacity() > 2 * GROUP_BYTES {
            self.pending = Vec::new();
        }
        self.pending_records = 0;
        Ok(())
    }

    /// Where the log's whole groups end in its file (the next group goes there).
    pub(crate) fn end(&self) -> u64 {
        self.next
    }

    /// Notes that a flush (a compaction, the session's end) syncs the log up to [`Log::end`].
    pub(crate) fn flushing(&mut self) {
        self.flushing_from = self.next;
    }

    /// Bytes of records the log gathered or appended to its file since the last flush began:
    /// what opening the store after a crash would read and check.
    pub(crate) fn unflushed(&self) -> u64 {
        (self.next + self.pending.len() as u64).saturating_sub(self.flushing_from)
    }

    /// Whether the log holds nothing, in its file or gathered.
    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.next == 0
    }

    /// The overlay, read from `file` (and the records gathered) the first time.
    fn overlay(&mut self, file: &LogFile) -> std::io::Result<&Overlay> {
        if self.overlay.is_none() {
            let walked = self.walked.take();
            let overlay =
                Overlay::read(file, self.next, self.cut_short, &self.pending, walked)?;
            self.overlay = Some(overlay);
        }
        Ok(self.overlay.as_ref().expect("just read"))
    }
}


/// The sequence number in an entry key.
fn seq_of(key: &[u8; 36]) -> u32 {
    u32::from_be_bytes(key[32..].try_into().expect("4 bytes"))
}

/// Reads the values the log's index points at: from the group being gathered (as copied when
/// the read began) or from the log's file, one value at a time.
struct Values<'a> {
    file: &'a LogFile,
    pending: (u64, std::borrow::Cow<'a, [u8]>),
}

impl Values<'_> {
    fn get(&mut self, loc: Loc) -> std::result::Result<IVec, String> {
        let Loc::At { group, start, end } = loc else {
            return Err("removed".into());
        };
        let range = start as usize..end as usize;
        let short = || format!("log group {group} is shorter than its index says");
        if group == self.pending.0 {
            return self.pending.1.get(range).map(IVec::from).ok_or_else(short);
        }
        let len = range.end.checked_sub(range.start).ok_or_else(short)?;
        self.file
            .read_at(group + GROUP_HEAD + u64::from(start), len)
            .map(IVec::from)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => short(),
                _ => format!("{}: {e}", self.file.path().display()),
            })
    }
}

/// The merged view, in key order: `answers` with the log's overlay applied.
pub(super) struct Merged<'a> {
    store: &'a Store,
    base: std::iter::Peekable<sled::Iter>,
    overlay: std::iter::Peekable<std::collections::btree_map::IntoIter<[u8; 36], Loc>>,
    values: Values<'a>,
    damage: std::vec::IntoIter<Damage>,
    left_out: HashSet<[u8; 32]>,
}

impl Iterator for Merged<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if let Some(damage) = self.damage.next() {
            return Some(Err(Error::StoreCorrupt {
                path: self.store.path.clone(),
                entry: damage.entry,
                reason: damage.reason,
            }));
        }
        loop {
            let overlay_key = self.overlay.peek().map(|(k, _)| *k);
            let base_first = match (self.base.peek(), overlay_key) {
                (None, None) => return None,
                (Some(Err(_)), _) => true,
                (Some(Ok((base, _))), Some(over)) => base.as_ref() < &over[..],
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if base_first {
                let (key, value) = match self.base.next().expect("peeked") {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(self.store.err(e))),
                };
                // Looked up again so a whole read stays near sled's cache: its LRU evicts only
                // once a shard (of 256) has seen 64 reads, which a scan reading each leaf once
                // never did (210 MB kept for 100,000 recordings; 87 MB so:
                // docs/performance-history.md, Fifth pass).
                let _ = self.store.answers.get(&key);
                let Some(digest) = key.get(..32).and_then(|d| <[u8; 32]>::try_from(d).ok())
                else {
                    return Some(Err(self.store.corrupt_at(
                        &key,
                        format!("key has {} bytes, expected 36", key.len()),
                    )));
                };
                if key.len() != 36 {
                    return Some(Err(self.store.corrupt_at(
                        &key,
                        format!("key has {} bytes, expected 36", key.len()),
                    )));
                }
                if self.left_out.contains(&digest) {
                    continue;
                }
                return Some(Ok(Entry { key, digest, value }));
            }
            let (key, loc) = self.overlay.next().expect("peeked");
            // The log's last word on a key hides what `answers` holds under it.
            if let Some(Ok((base, _))) = self.base.peek()
                && base.as_ref() == &key[..]
            {
                self.base.next();
            }
            let digest: [u8; 32] = key[..32].try_into().expect("32 bytes");
            if loc == Loc::Removed || self.left_out.contains(&digest) {
                continue;
            }
            return Some(match self.values.get(loc) {
                Ok(value) => Ok(Entry {
                    key: IVec::from(&key[..]),
                    digest,
                    value,
                }),
                Err(reason) => Err(self.store.corrupt_at(&key, reason)),
            });
        }
    }
}

impl Store {
    /// Every entry of the merged view, in key order (damage found in the log first).
    pub(super) fn merged(&self) -> Result<Merged<'_>> {
        let (overlay, pending) = {
            let mut session = self.lock();
            let log = &mut session.log;
            let overlay = log.overlay(&self.flusher.log).map_err(|e| self.log_err(e))?.clone();
            (overlay, (log.next, log.pending.clone()))
        };
        let left_out = overlay.damage.iter().filter_map(|d| d.digest).collect();
        Ok(Merged {
            store: self,
            base: self.answers.iter().peekable(),
            overlay: overlay.keys.into_iter().peekable(),
            values: Values {
                file: &self.flusher.log,
                pending: (pending.0, std::borrow::Cow::Owned(pending.1)),
            },
            damage: overlay.damage.into_iter(),
            left_out,
        })
    }

    /// The keys and values of every stored answer of the request with `digest`, in order.
    pub(super) fn merged_of(&self, digest: &[u8; 32]) -> Result<Vec<(IVec, IVec)>> {
        let range = entry_key(digest, 0)..=entry_key(digest, u32::MAX);
        let mut found: BTreeMap<[u8; 36], IVec> = BTreeMap::new();
        let mut session = self.lock();
        let log = &mut session.log;
        let overlay = log.overlay(&self.flusher.log).map_err(|e| self.log_err(e))?;
        if let Some(damage) = overlay.damage.iter().find(|d| d.digest == Some(*digest)) {
            return Err(self.corrupt_at(&entry_key(digest, 0), damage.reason.clone()));
        }
        let touched: Vec<([u8; 36], Loc)> =
            overlay.keys.range(range).map(|(k, l)| (*k, *l)).collect();
        if !log.base_empty {
            for entry in self.answers.scan_prefix(digest) {
                let (key, value) = entry.map_err(|e| self.err(e))?;
                if let Ok(key) = <[u8; 36]>::try_from(key.as_ref()) {
                    found.insert(key, value);
                }
            }
        }
        let mut values = Values {
            file: &self.flusher.log,
            pending: (log.next, std::borrow::Cow::Borrowed(&log.pending)),
        };
        for (key, loc) in touched {
            found.remove(&key);
            if loc != Loc::Removed {
                let value = values.get(loc).map_err(|why| self.corrupt_at(&key, why))?;
                found.insert(key, value);
            }
        }
        Ok(found
            .into_iter()
            .map(|(k, v)| (IVec::from(&k[..]), v))
            .collect())
    }

    /// The keys of the answers the store holds for the request with `digest`, in order, as a
    /// writer needs them: from the digests the replay pack listed when they are known (see
    /// `Session::known`), else from the merged view. Under the session lock.
    pub(super) fn stored_keys(
        &self,
        session: &mut Session,
        digest: &[u8; 32],
    ) -> Result<Vec<[u8; 36]>> {
        if let Some(known) = &session.known {
            let count = known.get(digest).copied().unwrap_or(0);
            return Ok((0..count).map(|seq| entry_key(digest, seq)).collect());
        }
        let log = &mut session.log;
        let base_empty = log.base_empty;
        let overlay = log.overlay(&self.flusher.log).map_err(|e| self.log_err(e))?;
        let mut keys: std::collections::BTreeSet<[u8; 36]> = Default::default();
        if !base_empty {
            for key in self.answers.scan_prefix(digest).keys() {
                let key = key.map_err(|e| self.err(e))?;
                if let Ok(key) = <[u8; 36]>::try_from(key.as_ref()) {
                    keys.insert(key);
                }
            }
        }
        // One search down the tree (a range with both ends searches twice): this runs for
        // every new request recorded.
        let touched = (overlay.keys.range(entry_key(digest, 0)..))
            .take_while(|(key, _)| key[..32] == digest[..]);
        for (key, loc) in touched {
            match loc {
                Loc::Removed => keys.remove(key),
                Loc::At { .. } => keys.insert(*key),
            };
        }
        // A damaged record's key may hold an answer: replaced with the rest (which heals it).
        keys.extend(
            (overlay.damage.iter())
                .filter_map(|d| d.key)
                .filter(|k| k[..32] == digest[..]),
        );
        Ok(keys.into_iter().collect())
    }

    /// The sequence number the next answer of a request gets when appended after `stored`.
    pub(super) fn next_seq(stored: &[[u8; 36]]) -> u32 {
        stored.last().map_or(0, |last| seq_of(last) + 1)
    }

    /// Applies the log to `answers` and empties it, ahead of a batch write (import, new match
    /// rules) that works on `answers` alone. Under the session lock. A damaged log refuses the
    /// batch, naming the record; nothing is changed then. sled is flushed, with the write counter,
    /// before the log file is emptied: a crash in between leaves the log in place, and applying
    /// it again gives the same store.
    pub(super) fn fold_log(&self, session: &mut Session) -> Result<()> {
        self.write_group(session)?;
        let file = &self.flusher.log;
        let log = &mut session.log;
        // Damage the log still holds (not healed by recording its request again) refuses the
        // batch: folding would lose the record for good without a word.
        let damage = log.overlay(file).map_err(|e| self.log_err(e))?.damage.first();
        if let Some(damage) = damage {
            return Err(Error::StoreCorrupt {
                path: self.path.clone(),
                entry: damage.entry.clone(),
                reason: format!(
                    "{}; export the store with --skip-damaged and import it into a new one, or \
                     record that request again",
                    damage.reason
                ),
            });
        }
        if !log.is_empty() {
            // Applied in batches of a bounded size, like a journal's redo.
            let mut batch = sled::Batch::default();
            let mut bytes = 0usize;
            each_group(file, log.next, |e| self.log_err(e), |read| {
                let Read::Group(_, value, checked) = read else {
                    return Ok(());
                };
                // Damaged records left are healed ones (checked above): a later record removed
                // their key.
                for found in records(value, checked) {
                    if let Found::Record {
                        removes,
                        key,
                        value: at,
                        ..
                    } = found
                    {
                        for old in &removes {
                            batch.remove(&old[..]);
                        }
                        bytes += at.len() + 36 * (removes.len() + 1);
                        batch.insert(&key[..], &value[at]);
                    }
                }
                if bytes >= crate::storage::durability::REDO_BATCH_BYTES {
                    let full = std::mem::take(&mut batch);
                    self.answers.apply_batch(full).map_err(|e| self.err(e))?;
                    bytes = 0;
                }
                Ok(())
            })?;
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            // The counter covers every write the log held: once the log is empty, sled is
            // where it reads from.
            let generation = self.written.load(Ordering::SeqCst);
            let folded = *self.flusher.folds.lock().expect("store folds lock poisoned");
            let end = compact::LogEnd { at: 0, folds: folded };
            self.flusher.persist(generation, end)?;
            // The log is emptied once sled says it is empty (a log longer than that is fine),
            // and no flush that read where it ended before puts that back (see `Flusher::folds`).
            let mut folds = self.flusher.folds.lock().expect("store folds lock poisoned");
            *folds += 1;
            (self.meta.insert(LOG_END_KEY, &0u64.to_be_bytes()))
                .and_then(|_| self.flusher.db.flush())
                .map_err(|e| self.err(e))?;
            file.clear().map_err(|e| self.log_err(e))?;
            drop(folds);
            log.next = 0;
            log.flushing_from = 0;
        }
        log.overlay = Some(Overlay::default());
        log.base_empty = self.answers.is_empty();
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::{
        interaction, journal as journal_record, key, open_when_released, record_together, statuses,
    };
    use super::*;

    /// The records of the log's first group, and the bytes of the groups after it.
    pub(in crate::storage::store) fn split_first_group(file: &LogFile) -> (Vec<u8>, Vec<u8>) {
        let size = file.size().unwrap();
        let crate::storage::log_file::Step::Group { len, .. } = file.step(0, size).unwrap() else {
            panic!("the log starts with a group");
        };
        let end = GROUP_HEAD + u64::from(len);
        let rest = file.read_at(end, (size - end) as usize).unwrap();
        (file.group(0, len).unwrap().0, rest)
    }

    /// The records of the first group of `store`'s log.
    fn first_group(store: &Store) -> Vec<u8> {
        split_first_group(&store.flusher.log).0
    }

    /// Records `statuses` as answers of `path`, the first replacing (record mode) or appended
    /// (auto mode), one at a time (each a group of its own).
    async fn record(store: &Store, path: &str, statuses: &[&str], replace: bool) {
        for status in statuses {
            let i = interaction(path, status);
            store.record(&key(&i), &i, replace).await.unwrap();
        }
    }

    /// Records each of `answers` (a path and a status) replacing what the store had, as
    /// concurrent requests do: one group of the log.
    fn record_group(store: &Store, answers: &[(&str, &str)]) {
        let answers: Vec<Interaction> = answers.iter().map(|(path, status)| interaction(path, status)).collect();
        let replacing: Vec<(&Interaction, bool)> = answers.iter().map(|i| (i, true)).collect();
        record_together(store, &replacing);
    }

    fn log_groups(store: &Store) -> usize {
        let file = &store.flusher.log;
        file.groups().unwrap().len()
    }

    #[tokio::test]
    async fn recordings_land_in_groups_and_read_back_over_what_answers_held() {
        let dir = tempfile::tempdir().unwrap();
        let a = interaction("/a", "imported");
        let b = interaction("/b", "imported");
        {
            // What an import (or a format-1 store) leaves: answers in `answers`, none in the log.
            let store = Store::open(dir.path()).unwrap();
            let recordings = [a.clone(), b.clone()].map(|i| Recording {
                key: key(&i),
                answers: vec![i],
            });
            store.import(&recordings).await.unwrap();
            assert_eq!(log_groups(&store), 0);
        }
        let store = open_when_released(dir.path());
        // Auto mode appends after the imported answer; record mode replaces the other; 70 new
        // requests. Each recording, awaited alone, is a group of its own once it returns.
        record(&store, "/a", &["a1", "a2"], false).await;
        record(&store, "/b", &["b0"], true).await;
        for n in 0..70 {
            record(&store, &format!("/n{n:02}"), &["new"], true).await;
        }
        assert_eq!(log_groups(&store), 73, "73 records, each written before it returned");
        let load = |store: &Store| {
            let mut by_path: Vec<(String, Vec<String>)> = Vec::new();
            for r in store.load(&MatchRules::default()).unwrap() {
                let body = |i: &Interaction| {
                    let bytes = crate::model::interaction::body_bytes(&i.response.body).unwrap();
                    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    json["status"].as_str().unwrap().to_owned()
                };
                by_path.push((r.answers[0].request.path.clone(), r.answers.iter().map(body).collect()));
            }
            by_path.sort();
            by_path
        };
        let seen = load(&store);
        assert_eq!(seen.len(), 72);
        assert_eq!(seen[0], ("/a".into(), vec!["imported".into(), "a1".into(), "a2".into()]));
        assert_eq!(seen[1], ("/b".into(), vec!["b0".into()]));
        assert_eq!(store.answers_of(key(&a).digest()).unwrap().len(), 3);
        assert_eq!(store.answers_of(key(&b).digest()).unwrap().len(), 1);
        assert_eq!(store.len(), 74);
        store.flush().await.unwrap();
        assert_eq!(log_groups(&store), 73, "nothing was left to gather");
        drop(store);
        // Read back after a reopen, and again once an import folded the log into `answers`.
        let store = open_when_released(dir.path());
        assert_eq!(load(&store), seen);
        let c = interaction("/c", "imported");
        store
            .import(&[Recording {
                key: key(&c),
                answers: vec![c],
            }])
            .await
            .unwrap();
        assert_eq!(log_groups(&store), 0);
        let mut folded = load(&store);
        assert_eq!(folded.remove(2), ("/c".into(), vec!["imported".into()]));
        assert_eq!(folded, seen);
    }

    #[tokio::test]
    async fn a_writer_turns_a_format_1_or_3_store_into_format_4_and_other_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let format = |dir: &Path| {
            let db = sled::open(dir).unwrap();
            let v = db.open_tree("meta").unwrap().get("format").unwrap().unwrap();
            u32::from_be_bytes(v.as_ref().try_into().unwrap())
        };
        let set_format = |dir: &Path, v: u32| {
            let db = sled::open(dir).unwrap();
            db.open_tree("meta").unwrap().insert("format", &v.to_be_bytes()).unwrap();
            db.flush().unwrap();
        };
        drop(Store::open(dir.path()).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
        set_format(dir.path(), 1);
        // A reader reads a format-1 store as it is, and leaves it so.
        drop(Store::open_existing(dir.path()).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(format(dir.path()), 1);
        let store = open_when_released(dir.path());
        record(&store, "/a", &["a"], true).await;
        // A session that ends well leaves no journal (one left to redo marks the store: see
        // `a_reader_redoing_a_journal_…`).
        store.flush().await.unwrap();
        drop(store);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(format(dir.path()), STORE_FORMAT);
        // A format-3 store (SHA-256 records) is read and left as it is by a reader, and a writer
        // marks it format 4 (the CRC-32 records it adds would read as damage to an older one).
        set_format(dir.path(), 3);
        let reader = Store::open_existing(dir.path()).unwrap();
        assert_eq!(reader.len(), 1);
        drop(reader);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(format(dir.path()), 3);
        let store = open_when_released(dir.path());
        record(&store, "/b", &["b"], true).await;
        drop(store);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(format(dir.path()), 4);
        set_format(dir.path(), 5);
        let e = Store::open_existing(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has format 5, this ims-vcr reads formats [1, 2, 3, 4]"), "{e}");
    }

    /// Closes `store` and gives the log group holding its recordings `damage`.
    fn damage_log(store: Store, damage: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
        let dir = store.path().to_owned();
        drop(store);
        // Once sled let go of the store (nothing holds it then).
        drop(sled_of(&dir));
        let file = LogFile::open(&dir).unwrap();
        let (mut bytes, rest) = split_first_group(&file);
        let len = bytes.len();
        damage(&mut bytes);
        assert_eq!(bytes.len(), len, "the group's length holds, its CRC does not");
        use std::os::unix::fs::FileExt;
        let raw = std::fs::OpenOptions::new().write(true).open(file.path()).unwrap();
        raw.write_all_at(&bytes, GROUP_HEAD).unwrap();
        assert_eq!(file.read_at(GROUP_HEAD + len as u64, rest.len()).unwrap(), rest);
        dir
    }

    /// The store in `dir` holding `a` as the answers of /a and one of /b, flushed, then the
    /// `n`th record of its log damaged (its checksum fails), opened again.
    async fn with_damaged_record(dir: &Path, a: &[&str], n: usize) -> Store {
        let store = Store::open(dir).unwrap();
        let mut answers: Vec<(&str, &str)> = a.iter().map(|status| ("/a", *status)).collect();
        answers.push(("/b", "b0"));
        record_group(&store, &answers);
        store.flush().await.unwrap();
        let end = match journal::scan(&first_group(&store)).remove(n) {
            Found::Record { value, .. } => value.end - 1,
            other => panic!("{other:?}"),
        };
        open_when_released(&damage_log(store, |bytes| bytes[end] ^= 0x55))
    }

    #[tokio::test]
    async fn a_damaged_log_record_is_named_and_leaves_out_its_request_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        record_group(&store, &[("/a", "a0"), ("/a", "a1"), ("/b", "b0")]);
        store.flush().await.unwrap();
        // The last byte of the second record (the second answer of /a) flipped: its length
        // holds, its checksum fails.
        let a1 = journal::scan(&first_group(&store))
            .into_iter()
            .nth(1)
            .map(|f| match f {
                Found::Record { value, .. } => value.end - 1,
                other => panic!("{other:?}"),
            })
            .unwrap();
        let dir = damage_log(store, |bytes| bytes[a1] ^= 0x55);
        let store = Store::open_existing(&dir).unwrap();
        let (recordings, damaged) = store.load_readable(&MatchRules::default()).unwrap();
        assert_eq!(recordings.len(), 1, "/a is left out whole, /b is read");
        assert_eq!(recordings[0].answers[0].request.path, "/b");
        assert_eq!(damaged.len(), 1);
        let named = damaged[0].to_string();
        assert!(named.contains("log group 0 fails its checksum"), "{named}");
        assert!(store.load(&MatchRules::default()).is_err());
        let b = interaction("/b", "b0");
        assert_eq!(store.answers_of(key(&b).digest()).unwrap().len(), 1);
        let a = interaction("/a", "a0");
        assert!(store.answers_of(key(&a).digest()).is_err());
        drop(store);
        // A length that no longer holds: the rest of the group is lost, and said so.
        let store = open_when_released(&dir);
        let dir = damage_log(store, |bytes| bytes[..4].copy_from_slice(&[0xff; 4]));
        let store = Store::open_existing(&dir).unwrap();
        let (recordings, damaged) = store.load_readable(&MatchRules::default()).unwrap();
        assert!(recordings.is_empty());
        assert!(damaged[0].to_string().contains("log group 0 is corrupt: garbled from byte 0"), "{}", damaged[0]);
        assert!(statuses_err(&store));
    }

    /// sled's handle on `dir` once the last store let go of it.
    fn sled_of(dir: &Path) -> sled::Db {
        loop {
            match sled::open(dir) {
                Ok(db) => break db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    #[tokio::test]
    async fn a_reader_redoing_a_journal_into_the_log_of_a_format_1_or_3_store_marks_it_format_4() {
        let dir = tempfile::tempdir().unwrap();
        let a = interaction("/a", "a0");
        let generation = {
            let store = Store::open(dir.path()).unwrap();
            store.record(&key(&a), &a, true).await.unwrap();
            store.flush().await.unwrap();
            store.generation()
        };
        {
            // What an older ims-vcr leaves when killed: format 1, a record only in its journal.
            let db = sled_of(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.insert("format", &1u32.to_be_bytes()).unwrap();
            meta.remove(LOG_END_KEY).unwrap();
            db.flush().unwrap();
            LogFile::open(dir.path()).unwrap().clear().unwrap();
        }
        // A reader redoes a journal record written after write `done`; the store is marked.
        let redo_and_check = |done: u64, path: &str, stored: usize| {
            journal_record(dir.path(), done + 1, &interaction(path, "x"), 0);
            let reader = Store::open_existing(dir.path()).unwrap();
            assert_eq!(reader.len(), stored, "{path} redone");
            drop(reader);
            let db = sled_of(dir.path());
            let format = db.open_tree("meta").unwrap().get("format").unwrap().unwrap();
            assert_eq!(format.as_ref(), STORE_FORMAT.to_be_bytes(), "an older ims-vcr must refuse it now");
        };
        // /a was only in the log this test cleared.
        redo_and_check(generation, "/b", 1);
        let file = LogFile::open(dir.path()).unwrap();
        assert_eq!(file.groups().unwrap().len(), 1);
        drop(file);
        // A format-3 store (SHA-256 records) with a journal left to redo: the redo writes
        // CRC-32 records to its log, so a reader marks it too (with nothing to redo, it does not:
        // see the test above).
        let db = sled_of(dir.path());
        db.open_tree("meta").unwrap().insert("format", &3u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
        drop(db);
        redo_and_check(generation + 1, "/c", 2);
    }

    #[tokio::test]
    async fn a_format_2_stores_log_moves_from_sled_to_its_file_as_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for n in 0..GROUP_RECORDS + 3 {
            record(&store, &format!("/first/{n}"), &["x"], true).await;
        }
        store.flush().await.unwrap();
        let seen = statuses(&store);
        drop(store);
        {
            // What an ims-vcr of store format 2 leaves: the groups in sled's `log` tree, under
            // big-endian numbers, and one under a key of another shape (damage); no log file.
            let db = sled_of(dir.path());
            let file = LogFile::open(dir.path()).unwrap();
            let tree = db.open_tree("log").unwrap();
            let mut n = 0u64;
            each_group(&file, file.size().unwrap(), |e| e, |read| {
                let Read::Group(_, bytes, true) = read else { panic!("a whole group") };
                tree.insert(n.to_be_bytes(), bytes).unwrap();
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, GROUP_RECORDS as u64 + 3, "recorded one at a time: a group each");
            tree.insert(b"stray-key!", &b"x"[..]).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert("format", &2u32.to_be_bytes()).unwrap();
            meta.remove(LOG_END_KEY).unwrap();
            db.flush().unwrap();
            std::fs::remove_file(file.path()).unwrap();
        }
        // A reader moves it (and names the stray group as damage); a writer then appends after.
        let reader = Store::open_existing(dir.path()).unwrap();
        let (recordings, damaged) = reader.load_readable(&MatchRules::default()).unwrap();
        assert_eq!(recordings.len(), GROUP_RECORDS + 3);
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert!(damaged[0].to_string().contains("garbled from byte 0 of 1"), "{}", damaged[0]);
        drop(reader);
        {
            let db = sled_of(dir.path());
            assert!(db.open_tree("log").unwrap().is_empty());
            let format = db.open_tree("meta").unwrap().get("format").unwrap().unwrap();
            assert_eq!(format.as_ref(), STORE_FORMAT.to_be_bytes());
        }
        let store = open_when_released(dir.path());
        record(&store, "/second", &["y"], true).await;
        store.flush().await.unwrap();
        let (recordings, _) = store.load_readable(&MatchRules::default()).unwrap();
        assert_eq!(recordings.len(), GROUP_RECORDS + 4);
        let now: Vec<String> = recordings
            .iter()
            .flat_map(|r| &r.answers)
            .map(|i| {
                let bytes = crate::model::interaction::body_bytes(&i.response.body).unwrap();
                String::from_utf8(bytes.to_vec()).unwrap()
            })
            .collect();
        assert!(seen.iter().all(|s| now.contains(s)), "{now:?}");
        assert_eq!(now.len(), seen.len() + 1);
    }

    #[tokio::test]
    async fn an_upgrade_cut_short_after_its_mark_keeps_the_whole_file_and_empties_the_tree() {
        // Marked by this ims-vcr, or by one of format 3 before this one opens it.
        for mark in [STORE_FORMAT, 3] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            for n in 0..2 * GROUP_RECORDS {
                record(&store, &format!("/n/{n}"), &["x"], true).await;
            }
            store.flush().await.unwrap();
            drop(store);
            {
                // Marked with the file whole, then cut short while sled emptied the tree key by
                // key: only the second group is left there.
                let db = sled_of(dir.path());
                let file = LogFile::open(dir.path()).unwrap();
                let second = file.groups().unwrap().remove(1).1;
                db.open_tree("log").unwrap().insert(1u64.to_be_bytes(), second).unwrap();
                db.open_tree("meta").unwrap().insert("format", &mark.to_be_bytes()).unwrap();
                db.flush().unwrap();
            }
            let store = open_when_released(dir.path());
            assert_eq!(store.len(), 2 * GROUP_RECORDS, "marked {mark}: nothing lost");
            drop(store);
            assert!(sled_of(dir.path()).open_tree("log").unwrap().is_empty(), "marked {mark}");
        }
    }

    #[tokio::test]
    async fn with_fsync_a_group_lost_past_the_last_flush_is_cut_and_the_journal_redoes_every_record_after_it() {
        let dir = tempfile::tempdir().unwrap();
        // With `--fsync` every record is in the journal first, and the log gathers groups of
        // `GROUP_RECORDS`.
        let store = Store::open(dir.path()).unwrap().fsync_every_answer(true);
        for n in 0..2 * GROUP_RECORDS {
            record(&store, &format!("/n/{n}"), &["x"], true).await;
        }
        assert_eq!(log_groups(&store), 2);
        // No flush: both groups are past the log's synced end, and in the journal. A power
        // loss then keeps the second group and loses the first one's header.
        use std::os::unix::fs::FileExt;
        let dir2 = killed_copy(store, |log| log.write_all_at(&[0; GROUP_HEAD as usize], 0).unwrap());
        let store = Store::open_existing(dir2.path()).unwrap();
        let (recordings, damaged) = store.load_readable(&MatchRules::default()).unwrap();
        assert!(damaged.is_empty(), "{damaged:?}");
        assert_eq!(recordings.len(), 2 * GROUP_RECORDS);
    }

    /// A copy of the folder of `store`, left as a `kill -9` of its recorder leaves it (no flush,
    /// no close), its log file then changed by `change`.
    fn killed_copy(store: Store, change: impl FnOnce(&std::fs::File)) -> tempfile::TempDir {
        let dir = store.path().to_owned();
        std::mem::forget(store);
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
            }
        }
        let log = std::fs::OpenOptions::new().write(true).open(copy.path().join(LOG_FILE));
        change(&log.unwrap());
        copy
    }

    #[tokio::test]
    async fn without_fsync_a_killed_recorders_log_keeps_every_whole_group_and_cuts_only_a_torn_end() {
        use std::os::unix::fs::FileExt;
        let recorded = || {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            // Three groups past the last flush (none), written as the answers went out.
            record_group(&store, &[("/a", "a0"), ("/b", "b0")]);
            record_group(&store, &[("/c", "c0")]);
            record_group(&store, &[("/d", "d0"), ("/e", "e0")]);
            let groups: Vec<u64> = store.flusher.log.groups().unwrap().iter().map(|g| g.0).collect();
            assert_eq!(groups.len(), 3);
            assert!(store.lock().journal.is_empty());
            (dir, store, groups)
        };
        // A fourth group a kill cut short (its answers never went out): cut off, the rest kept.
        let (_dir, store, _) = recorded();
        let end = store.flusher.log.size().unwrap();
        let copy = killed_copy(store, |log| {
            log.write_all_at(b"ivlg\xff\x00\x00\x00partial", end).unwrap();
        });
        let store = Store::open_existing(copy.path()).unwrap();
        assert_eq!((store.generation(), store.len()), (5, 5));
        assert_eq!(store.flusher.log.size().unwrap(), end, "the torn end is cut off");
        drop(store);
        // A byte of the middle group changed (a disk fault): the groups after it are still the
        // log's, the damage named, and the write counter goes on after the last group.
        let (_dir, store, groups) = recorded();
        let copy = killed_copy(store, |log| {
            // Inside the value of its one record, near its end.
            log.write_all_at(b"#", groups[2] - 2).unwrap();
        });
        let store = Store::open_existing(copy.path()).unwrap();
        assert_eq!(store.generation(), 5);
        let (recordings, damaged) = store.load_readable(&MatchRules::default()).unwrap();
        let mut paths: Vec<&str> = recordings.iter().map(|r| r.answers[0].request.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["/a", "/b", "/d", "/e"]);
        assert_eq!(damaged.len(), 1, "{damaged:?}");
    }

    #[tokio::test]
    async fn a_store_whose_log_is_missing_is_refused_also_before_its_first_flush() {
        for flushed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            record(&store, "/a", &["a0"], true).await;
            if flushed {
                store.flush().await.unwrap();
            }
            // Killed (before its first flush, the log the only copy), then the log deleted.
            let copy = killed_copy(store, |_| {});
            std::fs::remove_file(copy.path().join(LOG_FILE)).unwrap();
            let e = Store::open_existing(copy.path()).unwrap_err().to_string();
            assert!(e.contains("is damaged") && e.contains("ims-vcr-log) is missing"), "{e}");
            assert!(!copy.path().join(LOG_FILE).exists(), "flushed {flushed}: nothing created");
        }
    }

    /// What the index reads after a recorder was killed: the groups the open read whole (written
    /// since the last flush) taken from the open, the others read, a journal's redo after them.
    /// It must be what reading the whole log gives: with damage before them, healed by one of
    /// their records or not.
    #[tokio::test]
    async fn the_index_of_a_killed_recorders_log_reads_it_once_and_is_what_reading_it_whole_gives() {
        for heal in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            // The second answer of /a damaged, in a group the flush synced.
            let store = with_damaged_record(dir.path(), &["a0", "a1"], 1).await;
            // Then groups never flushed (with /a recorded again in the first of them, healing
            // the damage): a kill. Then records only in a journal (what an earlier ims-vcr, or
            // one with `--fsync`, leaves), which the open adds to the log after them.
            if heal {
                record(&store, "/a", &["a2"], true).await;
            }
            for n in 0..2 * GROUP_RECORDS + 3 {
                record(&store, &format!("/n/{n}"), &["x"], true).await;
            }
            let g = store.generation();
            let dir2 = killed_copy(store, |_| {});
            for n in 0..3 {
                journal_record(dir2.path(), g + 1 + n, &interaction(&format!("/j/{n}"), "x"), 0);
            }
            let store = Store::open_existing(dir2.path()).unwrap();
            let mut session = store.lock();
            let log = &mut session.log;
            let file = &store.flusher.log;
            let whole = Overlay::read(file, log.next, log.cut_short, &log.pending, None).unwrap();
            assert_eq!(whole.damage.is_empty(), heal, "{:?}", whole.damage);
            // The groups read at open are not read again.
            let walked = log.walked.take().unwrap();
            let from = walked.first().expect("groups read whole at open");
            let redone = walked.end();
            assert!(redone < log.next, "the journal's records are in groups after those walked");
            let once = Overlay::read_around(file, log.next, from, walked, &log.pending).unwrap();
            assert_eq!(once.as_ref(), Some(&whole), "heal {heal}");
        }
    }

    #[tokio::test]
    async fn a_damaged_record_is_healed_by_recording_its_request_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = with_damaged_record(dir.path(), &["a0"], 0).await;
        // An import refuses while the damage is there, naming it and a way out.
        let c = interaction("/c", "c0");
        let import = [Recording { key: key(&c), answers: vec![c] }];
        let e = store.import(&import).await.unwrap_err().to_string();
        assert!(e.contains("fails its checksum") && e.contains("--skip-damaged"), "{e}");
        // Record mode replaces every answer /a had: the damaged one with them.
        record(&store, "/a", &["a1"], true).await;
        let (recordings, damaged) = store.load_readable(&MatchRules::default()).unwrap();
        assert!(damaged.is_empty(), "{damaged:?}");
        assert_eq!(recordings.len(), 2);
        store.import(&import).await.unwrap();
        assert_eq!(statuses(&store).len(), 3);
    }

    fn statuses_err(store: &Store) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| statuses(store))).is_err()
    }
}
