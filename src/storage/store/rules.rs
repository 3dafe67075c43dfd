//! The match rules a store is recorded with: read from `meta`, and saved with every entry
//! re-keyed under them in one batch.

use super::*;

impl Store {
    /// The match rules the store was recorded with (default when never set).
    pub fn rules(&self) -> Result<MatchRules> {
        match self.meta.get("rules").map_err(|e| self.err(e))? {
            None => Ok(MatchRules::default()),
            Some(v) => {
                let rules: MatchRules =
                    serde_json::from_slice(&v).map_err(|e| Error::StoreCorrupt {
                        path: self.path.clone(),
                        entry: "meta/rules".into(),
                        reason: e.to_string(),
                    })?;
                // Rules are checked wherever they are read, not only where flags set them.
                rules.validate().map_err(|e| Error::StoreCorrupt {
                    path: self.path.clone(),
                    entry: "meta/rules".into(),
                    reason: format!("match.match_headers[{}]: {e}", e.index),
                })?;
                Ok(rules)
            }
        }
    }

    /// Saves the match rules. When they differ from the stored ones, every entry is re-keyed
    /// under the new rules in the same atomic batch, so the store never mixes two key schemes.
    pub async fn set_rules(&self, rules: &MatchRules) -> Result<()> {
        rules.validate().map_err(|e| {
            Error::Config(format!("match rules: match_headers[{}]: {e}", e.index))
        })?;
        if self.rules()? == *rules {
            return Ok(());
        }
        {
            let mut session = self.lock();
            self.before_batch_write(&mut session)?;
            self.fold_log(&mut session)?;
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
            let mut session = self.lock();
            self.before_batch_write(&mut session)?;
            self.answers.apply_batch(batch).map_err(|e| self.err(e))?;
            session.log.base_empty = self.answers.is_empty();
            if let Err(e) = self.meta.insert("rules", json) {
                // The entries are re-keyed but the rules are not: this store is not whole.
                let e = self.err(e);
                session.poisoned = Some(e.to_string());
                return Err(e);
            }
            self.count_write(&mut session);
        }
        self.flush().await
    }
}
