//! The sled-backed recording store: key layout, atomic writes, group-committed durability, and
//! loading everything back for replay or export.
//!
//! Layout: tree `answers` maps `digest (32 bytes) ++ sequence (u32, big-endian)` to the JSON of
//! one [`Interaction`], so a prefix scan yields a request's answers in recorded order; tree `meta`
//! holds the store format, the match rules and the write counter (`generation`).
//!
//! Damage detection: after each flush, the number of the last write known to be on disk goes into
//! the file [`DURABLE_FILE`] beside sled's own. sled recovers a prefix of its log and silently
//! drops everything after a truncated or garbled spot, so a store that reopens with a lower write
//! counter than that file lost flushed recordings, and is refused instead of served short.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::interaction::{Interaction, Recording};
use crate::key::{MatchRules, RequestKey, hex};

/// Version of the store layout; bumped when the key or value encoding changes.
const STORE_FORMAT: u32 = 1;
/// sled's default cache is 1 GiB; a test proxy needs far less.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// File in the store directory holding the last write counter known to be flushed (decimal).
pub const DURABLE_FILE: &str = "ims-vcr-durable";
/// Key in `meta` of the write counter: big-endian u64, bumped with every write.
const GENERATION_KEY: &str = "generation";

/// An open store. One process at a time (sled holds an exclusive lock).
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    answers: sled::Tree,
    meta: sled::Tree,
    /// Next sequence number per request digest recorded in this session. A digest absent here has
    /// not been recorded yet this session, so its first answer replaces any older ones. Held only
    /// around synchronous sled calls, never across an await; it also orders the write counter.
    session: Mutex<HashMap<[u8; 32], u32>>,
    /// Group commit: the write counter (persisted as `meta/generation`, so it keeps growing
    /// across sessions), and the highest write a finished flush covers.
    written: AtomicU64,
    flushed: AtomicU64,
    /// Serialises flushes; writers queue here, and the first through flushes for all of them.
    flush_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let db = open_db(path)?;
        let store_err = |source| store_error(path, source);
        let answers = db.open_tree("answers").map_err(store_err)?;
        let meta = db.open_tree("meta").map_err(store_err)?;
        let generation = match meta.get(GENERATION_KEY).map_err(store_err)? {
            None => 0,
            Some(v) => {
                u64::from_be_bytes(v.as_ref().try_into().map_err(|_| Error::StoreCorrupt {
                    path: path.to_owned(),
                    entry: format!("meta/{GENERATION_KEY}"),
                    reason: format!("{} bytes, expected 8", v.len()),
                })?)
            }
        };
        let durable = read_durable(path)?;
        if generation < durable {
            return Err(Error::StoreDamaged {
                path: path.to_owned(),
                reason: format!(
                    "write #{durable} was on disk (see {DURABLE_FILE}) but only writes up to \
                     #{generation} could be read back: its files were truncated, garbled or \
                     partly deleted, and the recordings after the damage are lost"
                ),
            });
        }
        let store = Store {
            path: path.to_owned(),
            db,
            answers,
            meta,
            session: Mutex::new(HashMap::new()),
            written: AtomicU64::new(generation),
            flushed: AtomicU64::new(generation),
            flush_lock: tokio::sync::Mutex::new(()),
        };
        store.check_format()?;
        Ok(store)
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: sled::Error) -> Error {
        store_error(&self.path, source)
    }

    /// Counts a write: the persisted counter first, then the in-memory one flushes read, so a
    /// flush never claims a write whose counter it did not cover. Taking the session lock's
    /// contents proves the caller holds it, which keeps the persisted counter monotonic.
    fn count_write(&self, _session: &mut HashMap<[u8; 32], u32>) -> Result<u64> {
        let generation = self.written.load(Ordering::SeqCst) + 1;
        self.meta
            .insert(GENERATION_KEY, &generation.to_be_bytes())
            .map_err(|e| self.err(e))?;
        self.written.store(generation, Ordering::SeqCst);
        Ok(generation)
    }

    fn check_format(&self) -> Result<()> {
        match self.meta.get("format").map_err(|e| self.err(e))? {
            None => {
                self.meta
                    .insert("format", &STORE_FORMAT.to_be_bytes())
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
            Some(v) if v.as_ref() == STORE_FORMAT.to_be_bytes() => Ok(()),
            Some(v) => Err(Error::Config(format!(
                "store {} has format {:?}, this ims-vcr reads format {STORE_FORMAT}; \
                 export it with the ims-vcr that wrote it and import the cassettes here",
                self.path.display(),
                v.as_ref()
            ))),
        }
    }

    /// The match rules the store was recorded with (default when never set).
    pub fn rules(&self) -> Result<MatchRules> {
        match self.meta.get("rules").map_err(|e| self.err(e))? {
            None => Ok(MatchRules::default()),
            Some(v) => serde_json::from_slice(&v).map_err(|e| Error::StoreCorrupt {
                path: self.path.clone(),
                entry: "meta/rules".into(),
                reason: e.to_string(),
            }),
        }
    }

    /// Saves the match rules. When they differ from the stored ones, every entry is re-keyed
    /// under the new rules in the same atomic batch, so the store never mixes two key schemes.
    pub async fn set_rules(&self, rules: &MatchRules) -> Result<()> {
        if self.rules()? == *rules {
            return Ok(());
        }
        let recordings = self.load(rules)?;
        let mut batch = sled::Batch::default();
        for old in self.answers.iter().keys() {
            batch.remove(old.map_err(|e| self.err(e))?);
        }
        // Requests that were distinct under the old rules may be one request under the new.
        let mut merged: std::collections::BTreeMap<[u8; 32], Vec<&Interaction>> =
            Default::default();
        for recording in &recordings {
            merged
                .entry(*recording.key.digest())
                .or_default()
                .extend(&recording.answers);
        }
        for (digest, answers) in merged {
            for (seq, interaction) in answers.into_iter().enumerate() {
                let seq = u32::try_from(seq).expect("a request has fewer than 2^32 answers");
                let value = serde_json::to_vec(interaction).expect("an interaction serialises");
                batch.insert(entry_key(&digest, seq).to_vec(), value);
            }
        }
        let json = serde_json::to_vec(rules).expect("rules serialise");
        {
            let mut session = self.session.lock().expect("store session lock poisoned");
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            self.meta.insert("rules", json).map_err(|e| self.err(e))?;
            self.count_write(&mut session)?;
        }
        self.flush().await
    }

    /// Appends an answer for `key` and returns once it is on disk (group commit: concurrent
    /// callers share one fsync). With `replace`, the first answer recorded for a key in this
    /// session replaces the answers older sessions recorded for it, atomically (record mode);
    /// without, it is appended after them (auto mode).
    pub async fn record(
        &self,
        key: &RequestKey,
        interaction: &Interaction,
        replace: bool,
    ) -> Result<()> {
        let value = serde_json::to_vec(interaction).expect("an interaction serialises");
        let generation = {
            let mut session = self.session.lock().expect("store session lock poisoned");
            let mut batch = sled::Batch::default();
            let seq = match session.get(key.digest()) {
                Some(next) => *next,
                None if replace => {
                    for old in self.answers.scan_prefix(key.digest()).keys() {
                        batch.remove(old.map_err(|e| self.err(e))?);
                    }
                    0
                }
                None => match self.answers.scan_prefix(key.digest()).keys().next_back() {
                    Some(last) => {
                        let last = last.map_err(|e| self.err(e))?;
                        let seq: [u8; 4] =
                            last[32..].try_into().map_err(|_| Error::StoreCorrupt {
                                path: self.path.clone(),
                                entry: hex(&last),
                                reason: "key is not 36 bytes".into(),
                            })?;
                        u32::from_be_bytes(seq) + 1
                    }
                    None => 0,
                },
            };
            batch.insert(entry_key(key.digest(), seq).to_vec(), value);
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            session.insert(*key.digest(), seq + 1);
            self.count_write(&mut session)?
        };
        self.durable(generation).await
    }

    /// Waits until write `generation` is flushed, flushing if nobody else is.
    async fn durable(&self, generation: u64) -> Result<()> {
        let _turn = self.flush_lock.lock().await;
        if self.flushed.load(Ordering::SeqCst) >= generation {
            return Ok(());
        }
        let target = self.written.load(Ordering::SeqCst);
        self.db.flush_async().await.map_err(|e| self.err(e))?;
        self.flushed.fetch_max(target, Ordering::SeqCst);
        self.note_durable(target).await;
        Ok(())
    }

    /// Writes `generation` into [`DURABLE_FILE`] (temporary file and rename: a crash leaves the
    /// old value, which is always safe to check against). A failure only weakens damage
    /// detection, so it is logged, not returned: the recording itself is on disk.
    async fn note_durable(&self, generation: u64) {
        let file = self.path.join(DURABLE_FILE);
        let tmp = self.path.join(format!("{DURABLE_FILE}.tmp"));
        let written = async {
            tokio::fs::write(&tmp, format!("{generation}\n")).await?;
            tokio::fs::rename(&tmp, &file).await
        };
        if let Err(e) = written.await {
            tracing::warn!(file = %file.display(), error = %e, "cannot note the flushed write count; damage detection for this store is weaker");
        }
    }

    /// Flushes everything written so far (shutdown, import).
    pub async fn flush(&self) -> Result<()> {
        self.durable(self.written.load(Ordering::SeqCst).max(1))
            .await
    }

    /// Every recording, answers in recorded order, sorted by digest. Keys are recomputed with
    /// `rules` so a change of rules is reflected.
    pub fn load(&self, rules: &MatchRules) -> Result<Vec<Recording>> {
        let mut out: Vec<Recording> = Vec::new();
        let mut current: Option<[u8; 32]> = None;
        for entry in self.entries() {
            let entry = entry?;
            let corrupt = |reason: String| self.corrupt(&entry, reason);
            let digest = entry.digest;
            let interaction: Interaction =
                serde_json::from_slice(&entry.value).map_err(|e| corrupt(e.to_string()))?;
            if current == Some(digest) {
                out.last_mut()
                    .expect("current is set only after a push")
                    .answers
                    .push(interaction);
            } else {
                let key = RequestKey::of_recorded(rules, &interaction.request).map_err(corrupt)?;
                out.push(Recording {
                    key,
                    answers: vec![interaction],
                });
                current = Some(digest);
            }
        }
        Ok(out)
    }

    /// The write counter: grows with every write, across sessions; a replay pack made at one
    /// value is out of date at any other.
    pub fn generation(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Every entry as stored, in key order (so a request's answers are adjacent and in order).
    pub(crate) fn entries(&self) -> impl Iterator<Item = Result<Entry>> + '_ {
        self.answers.iter().map(|e| {
            let (key, value) = e.map_err(|e| self.err(e))?;
            match key.get(..32).and_then(|d| d.try_into().ok()) {
                Some(digest) if key.len() == 36 => Ok(Entry { key, digest, value }),
                _ => Err(Error::StoreCorrupt {
                    path: self.path.clone(),
                    entry: hex(&key),
                    reason: format!("key has {} bytes, expected 36", key.len()),
                }),
            }
        })
    }

    /// The error for an entry whose value does not decode.
    pub(crate) fn corrupt(&self, entry: &Entry, reason: String) -> Error {
        Error::StoreCorrupt {
            path: self.path.clone(),
            entry: hex(&entry.key),
            reason,
        }
    }

    /// Number of stored answers.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Replaces the answers of every given request, all or nothing, and flushes.
    pub async fn import(&self, recordings: &[Recording]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for recording in recordings {
            for old in self.answers.scan_prefix(recording.key.digest()).keys() {
                batch.remove(old.map_err(|e| self.err(e))?);
            }
            for (seq, interaction) in recording.answers.iter().enumerate() {
                let seq = u32::try_from(seq).map_err(|_| {
                    Error::Config(format!(
                        "{}: more than {} answers",
                        recording.key.request_line(),
                        u32::MAX
                    ))
                })?;
                let value = serde_json::to_vec(interaction).expect("an interaction serialises");
                batch.insert(entry_key(recording.key.digest(), seq).to_vec(), value);
            }
        }
        {
            let mut session = self.session.lock().expect("store session lock poisoned");
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            self.count_write(&mut session)?;
        }
        self.flush().await
    }
}

/// One stored answer: its sled key (request digest ++ sequence), the digest, and the JSON of one
/// [`Interaction`].
pub(crate) struct Entry {
    key: sled::IVec,
    /// The request key's digest under the store's match rules.
    pub digest: [u8; 32],
    /// The interaction's JSON, as stored.
    pub value: sled::IVec,
}

fn entry_key(digest: &[u8; 32], seq: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(digest);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// How long `open` keeps trying while the store's lock is held. A store closed a moment ago can
/// still be locked briefly (sled's background flusher lets go of the file after the last handle
/// is dropped, and a child process being spawned holds inherited descriptors until it execs);
/// a store held by a running process stays locked, and then the error comes after this bound.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

fn open_db(path: &Path) -> Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open();
        match result.map_err(|e| open_error(path, e)) {
            Err(Error::StoreLocked { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

/// sled reports a held lock as a generic I/O error; recognise it to say what to do. sled pins
/// one version (0.34.7), so a store it calls unsupported has a damaged `conf` (or came from an
/// incompatible build).
fn open_error(path: &Path, source: sled::Error) -> Error {
    match source {
        _ if source.to_string().contains("could not acquire lock") => Error::StoreLocked {
            path: path.to_owned(),
        },
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
fn store_error(path: &Path, source: sled::Error) -> Error {
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

/// The last write counter known to be flushed, from [`DURABLE_FILE`] (0 when absent: a new store,
/// or one written before this check existed).
fn read_durable(store: &Path) -> Result<u64> {
    let file = store.join(DURABLE_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse().map_err(|_| {
            Error::Config(format!(
                "{}: expected a write count, found {:?}; if the store is otherwise fine, delete \
                 this file to skip the damage check once",
                file.display(),
                text.chars().take(40).collect::<String>()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(file, e)),
    }
}
