//! Importing recordings into a store: every given request's answers replaced in one batch, all
//! or nothing, and counted (new, replaced) for `ims-vcr import` to report.
//!
//! sled applies a batch whole after a crash, but not after a write it could not finish: a disk
//! that fills up during the import's flush left part of the batch in the store when it was next
//! opened. So before the batch, the import writes what it is about to change to
//! [`UNDO_FILE`] (each request it writes and the answers the store held for it), synced, and
//! deletes that file only once the batch is flushed. Every open of the store finds a file left
//! behind and puts those requests back as they were ([`undo_unfinished`]), before anything reads
//! them. An import that cannot write the file (a full disk) changes nothing.

use super::*;

impl Store {
    /// Replaces the answers of every given request, all or nothing, and flushes.
    #[cfg(any(test, feature = "internals"))]
    pub async fn import(&self, recordings: &[Recording]) -> Result<()> {
        self.import_counted(recordings).await.map(drop)
    }

    /// [`Store::import`], returning how many requests were new and how many replaced (and the
    /// answers those had), for `ims-vcr import` to say so.
    pub async fn import_counted(&self, recordings: &[Recording]) -> Result<Imported> {
        let (writes, imported) = self.prepare_import(recordings)?;
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        {
            let mut session = self.lock();
            self.before_batch_write(&mut session)?;
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            session.log.base_empty = self.answers.is_empty();
            self.count_write(&mut session);
        }
        self.flush().await?;
        // Until the file is gone, the next open undoes the import: a failure here is one.
        let undo_file = self.path.join(UNDO_FILE);
        std::fs::remove_file(&undo_file)
            .and_then(|()| crate::storage::sync_folder(&self.path))
            .map_err(|e| Error::io(&undo_file, e))?;
        Ok(imported)
    }

    /// What importing `recordings` writes (each sled key with its new value, or `None` to
    /// remove it) and counts, once what it changes is in [`UNDO_FILE`].
    fn prepare_import(&self, recordings: &[Recording]) -> Result<(Vec<Write>, Imported)> {
        // What recording gathered in the log goes to `answers` first: the batch works there.
        {
            let mut session = self.lock();
            self.before_batch_write(&mut session)?;
            self.fold_log(&mut session)?;
        }
        let mut writes = Vec::new();
        let mut imported = Imported::default();
        let mut undo = Vec::with_capacity(recordings.len());
        for recording in recordings {
            let mut before = Vec::new();
            for old in self.answers.scan_prefix(recording.key.digest()) {
                let (key, value) = old.map_err(|e| self.err(e))?;
                writes.push((key.to_vec(), None));
                before.push(String::from_utf8_lossy(&value).into_owned());
            }
            if before.is_empty() {
                imported.added += 1;
            } else {
                imported.replaced += 1;
                imported.replaced_answers += before.len();
            }
            undo.push(UndoRequest {
                digest: hex(recording.key.digest()),
                before,
            });
            for (seq, interaction) in recording.answers.iter().enumerate() {
                let seq = u32::try_from(seq).map_err(|_| {
                    Error::StoreRefused(format!(
                        "{}: more than {} answers",
                        recording.key.request_line(),
                        u32::MAX
                    ))
                })?;
                let value = serde_json::to_vec(interaction).expect("an interaction serialises");
                writes.push((entry_key(recording.key.digest(), seq).to_vec(), Some(value)));
            }
        }
        let undo = serde_json::to_vec(&undo).expect("plain data serialises");
        write_synced(&self.path, &self.path.join(UNDO_FILE), &undo)?;
        Ok((writes, imported))
    }
}

/// A sled key and its new value (`None`: removed).
type Write = (Vec<u8>, Option<Vec<u8>>);

/// The file in a store's folder that an import under way (or stopped part-way) leaves: see
/// the module's notes.
pub(crate) const UNDO_FILE: &str = "import-undo.json";

/// One request an import writes, as [`UNDO_FILE`] keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct UndoRequest {
    /// The request key's digest, in hex.
    digest: String,
    /// The entries the store held for it before the import (each an interaction's JSON), in
    /// order; none for a request new to the store.
    before: Vec<String>,
}

/// Writes `bytes` to `path` in the store folder `dir` whole: a temporary file, synced, renamed,
/// and the folder synced. On failure nothing is left.
fn write_synced(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| crate::storage::sync_folder(dir));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(path);
        Error::io(path, e)
    })
}

/// Puts back, in the store at `dir`, the requests an import stopped part-way had written (see
/// the module's notes), when it left [`UNDO_FILE`]; then deletes the file. Returns how many
/// requests were put back (0 when there was no file).
pub(super) fn undo_unfinished(dir: &Path, db: &sled::Db, answers: &sled::Tree) -> Result<usize> {
    let path = dir.join(UNDO_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A temporary file of an import stopped before it changed anything.
            let _ = std::fs::remove_file(path.with_extension("json.tmp"));
            return Ok(0);
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let damaged = |reason: String| Error::StoreDamaged {
        path: dir.to_owned(),
        reason: format!("{UNDO_FILE}, what an unfinished import changed, is unreadable ({reason}); the store cannot be put back as it was before that import"),
    };
    let undo: Vec<UndoRequest> = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    let mut batch = sled::Batch::default();
    for request in &undo {
        let digest: [u8; 32] = (0..32)
            .map(|i| request.digest.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| damaged(format!("digest {:?}", request.digest)))?;
        for key in answers.scan_prefix(digest).keys() {
            batch.remove(key.map_err(|e| store_error(dir, e))?);
        }
        for (seq, entry) in request.before.iter().enumerate() {
            let seq = u32::try_from(seq).map_err(|_| damaged("too many answers".into()))?;
            batch.insert(entry_key(&digest, seq).to_vec(), entry.as_bytes());
        }
    }
    answers.apply_batch(batch).map_err(|e| store_error(dir, e))?;
    db.flush().map_err(|e| store_error(dir, e))?;
    std::fs::remove_file(&path)
        .and_then(|()| crate::storage::sync_folder(dir))
        .map_err(|e| Error::io(&path, e))?;
    tracing::warn!(
        store = %dir.display(),
        requests = undo.len(),
        "an import into this store stopped part-way: the requests it had written are put back as they were before it"
    );
    Ok(undo.len())
}

/// What [`Store::import`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Requests the store did not hold.
    pub added: usize,
    /// Requests whose stored answers were replaced.
    pub replaced: usize,
    /// How many answers the replaced requests had in the store (now gone).
    pub replaced_answers: usize,
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::tests::{interaction, key, open_when_released, statuses};

    fn recording(path: &str, statuses: &[&str]) -> Recording {
        let answers: Vec<Interaction> = statuses.iter().map(|s| interaction(path, s)).collect();
        Recording {
            key: key(&answers[0]),
            answers,
        }
    }

    #[tokio::test]
    async fn an_import_leaves_no_undo_file_and_one_stopped_part_way_is_undone_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.import(&[recording("/a", &["old-a"])]).await.unwrap();
        assert!(!dir.path().join(UNDO_FILE).exists(), "a finished import leaves none");
        // An import replacing /a and adding /b and /c whose batch only partly reached the
        // disk (sled's flush failed on a full disk): /a replaced and /b added, /c not.
        let (writes, imported) = store
            .prepare_import(&[
                recording("/a", &["new-a1", "new-a2"]),
                recording("/b", &["new-b"]),
                recording("/c", &["new-c"]),
            ])
            .unwrap();
        assert_eq!((imported.added, imported.replaced), (2, 1));
        assert!(dir.path().join(UNDO_FILE).exists());
        let c = key(&interaction("/c", "x"));
        for (k, value) in writes.into_iter().filter(|(k, _)| !k.starts_with(c.digest())) {
            match value {
                Some(value) => store.answers.insert(k, value).unwrap(),
                None => store.answers.remove(k).unwrap(),
            };
        }
        store.answers.flush().unwrap();
        assert_eq!(statuses(&store).len(), 3, "the part that landed: 2 answers of /a, 1 of /b");
        drop(store);
        let reopened = open_when_released(dir.path());
        assert_eq!(statuses(&reopened), [r#"{"status":"old-a"}"#], "as before the import");
        assert!(!dir.path().join(UNDO_FILE).exists(), "undone once");
        drop(reopened);
        let again = open_when_released(dir.path());
        assert_eq!(statuses(&again), [r#"{"status":"old-a"}"#]);
    }

    #[tokio::test]
    async fn an_import_that_cannot_write_its_undo_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.import(&[recording("/a", &["old-a"])]).await.unwrap();
        // A folder where the file would go: its write fails as a full disk's would.
        std::fs::create_dir(dir.path().join(UNDO_FILE)).unwrap();
        let err = store.import(&[recording("/a", &["new-a"]), recording("/b", &["new-b"])]).await;
        let err = err.unwrap_err().to_string();
        assert!(err.contains(UNDO_FILE), "{err}");
        assert_eq!(statuses(&store), [r#"{"status":"old-a"}"#]);
    }

    #[test]
    fn an_unreadable_undo_file_refuses_the_store_by_name() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        std::fs::write(dir.path().join(UNDO_FILE), b"[{\"digest\": \"zz\"").unwrap();
        let err = (0..100)
            .find_map(|_| match Store::open(dir.path()) {
                Err(e) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
                other => Some(other),
            })
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains(UNDO_FILE) && err.contains("unfinished import"), "{err}");
    }
}
