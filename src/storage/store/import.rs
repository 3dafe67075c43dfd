//! Importing recordings into a store: every given request's answers replaced in one batch, all
//! or nothing, and counted (new, replaced) for `ims-vcr import` to report.

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
        // What recording gathered in the log goes to `answers` first: the batch works there.
        {
            let mut session = self.lock();
            self.before_batch_write(&mut session)?;
            self.fold_log(&mut session)?;
        }
        let mut batch = sled::Batch::default();
        let mut imported = Imported::default();
        for recording in recordings {
            let mut old_answers = 0;
            for old in self.answers.scan_prefix(recording.key.digest()).keys() {
                batch.remove(old.map_err(|e| self.err(e))?);
                old_answers += 1;
            }
            if old_answers == 0 {
                imported.added += 1;
            } else {
                imported.replaced += 1;
                imported.replaced_answers += old_answers;
            }
            for (seq, interaction) in recording.answers.iter().enumerate() {
                let seq = u32::try_from(seq).map_err(|_| {
                    Error::StoreRefused(format!(
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
            let mut session = self.lock();
            self.before_batch_write(&mut session)?;
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            session.log.base_empty = self.answers.is_empty();
            self.count_write(&mut session);
        }
        self.flush().await?;
        Ok(imported)
    }
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

