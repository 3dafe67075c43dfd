//! The replay pack's lifecycle, which the store owns: where the pack file lives, when it is
//! (re)written from the store, and how a new one is published. The pack's bytes are
//! `storage::pack`'s business; the write that deletes a published pack is `Store::before_write`.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::model::key::MatchRules;
use crate::storage::pack::{self, Pack, PackClaim, WriteError};
use crate::storage::store::Store;

/// File name of the replay pack inside a store directory.
pub const PACK_FILE: &str = "ims-vcr-replay.pack";

/// The replay pack of a store as it is now: read, or written and published but its index not
/// read yet ([`Published::read`]), so a caller may close the store first.
#[derive(Debug)]
pub(crate) enum Published {
    /// A current pack was there already, and is read.
    Read(Pack),
    /// Written from the store and put in place; its file open, its index not read.
    Written {
        file: File,
        path: PathBuf,
        generation: u64,
        rules: MatchRules,
    },
}

impl Published {
    /// The pack, its index read and checked. A pack just written that does not read back is
    /// refused naming its file, and deleted (unless another process replaced it meanwhile), so
    /// the next start writes it again.
    pub(crate) fn read(self) -> std::result::Result<Pack, String> {
        match self {
            Published::Read(pack) => Ok(pack),
            Published::Written {
                file,
                path,
                generation,
                rules,
            } => {
                let ours = file.metadata();
                Pack::from_file(file, &path)
                    .and_then(|pack| pack.check(generation, &rules))
                    .map_err(|why| {
                        if let Ok(ours) = &ours {
                            pack::remove_if_still(&path, ours);
                        }
                        format!("replay pack {}: just written, but {why}", path.display())
                    })
            }
        }
    }
}

impl Store {
    /// The replay pack of this store, written first when missing or out of date. `Ok(None)` when it cannot
    /// be written, or written does not read back (logged); the caller then reads the store itself.
    pub fn replay_pack(&self) -> Result<Option<Pack>> {
        let pack = self.published_pack()?.and_then(|published| {
            published
                .read()
                .inspect_err(|why| tracing::warn!("{why}; reading the whole store instead (slower start-up)"))
                .ok()
        });
        if let Some(pack) = &pack {
            // A recorder learns from the pack which requests the store holds (see
            // `Store::know_digests`); the pack says which write it was made at.
            self.know_digests(pack.generation(), pack.requests.iter().map(|r| (r.digest, r.answers.len() as u32)));
        }
        Ok(pack)
    }

    /// Whether a pack claiming `claim` (read before this store was opened: see
    /// [`Pack::read`]) describes the store as it is now, under its match rules `rules`.
    pub fn is_described_by(&self, claim: &PackClaim, rules: &MatchRules) -> bool {
        let described = claim.check(self.settled_generation(), rules);
        if let Err(why) = &described {
            tracing::debug!(store = %self.path().display(), "the pack read early is not current: {why}");
        }
        described.is_ok()
    }

    /// The replay pack when it is there and current (a writer then learns from it which
    /// requests the store holds, as with [`Store::replay_pack`]); `None` when it must be written
    /// first, which this does not do.
    pub fn current_pack(&self) -> Result<Option<Pack>> {
        let rules = self.rules()?;
        let path = self.path().join(PACK_FILE);
        match Pack::open(&path, self.settled_generation(), &rules) {
            Ok(pack) => {
                self.know_digests(pack.generation(), pack.requests.iter().map(|r| (r.digest, r.answers.len() as u32)));
                Ok(Some(pack))
            }
            Err(why) => {
                tracing::debug!(pack = %path.display(), "the replay pack is not current: {why}");
                Ok(None)
            }
        }
    }

    /// The replay pack, opened, or written and published (its index then read by
    /// [`Published::read`], which may come after the store is closed). `Ok(None)` when it
    /// cannot be written (logged).
    pub(crate) fn published_pack(&self) -> Result<Option<Published>> {
        self.pack_for(false)
    }

    /// [`Store::published_pack`] for the session of a writer that serves while the pack is
    /// written: when the session records meanwhile, the pack as written is still returned
    /// (unpublished: its file is deleted once opened, and the next start writes it again). It
    /// holds what the store held when the write began, or later; every answer recorded since
    /// went through this session, whose tapes know it and take precedence over the pack's.
    pub(crate) fn session_pack(&self) -> Result<Option<Published>> {
        self.pack_for(true)
    }

    fn pack_for(&self, keep_unpublished: bool) -> Result<Option<Published>> {
        let store = self;
        let rules = store.rules()?;
        let path = store.path().join(PACK_FILE);
        match Pack::open(&path, store.settled_generation(), &rules) {
            Ok(pack) => return Ok(Some(Published::Read(pack))),
            // Routine after every record session (its first write deletes the pack): said
            // only at debug level; a pack that is there but unusable is worth a line.
            Err(why) if !path.exists() => {
                tracing::debug!(pack = %path.display(), "writing the replay pack: {why}");
            }
            Err(why) => tracing::info!(pack = %path.display(), "writing the replay pack: {why}"),
        }
        match write(store, &rules, &path, keep_unpublished) {
            Ok(published) => Ok(Some(published)),
            Err(WriteError::Store(e)) => Err(e),
            Err(WriteError::Io(e)) => {
                tracing::warn!(pack = %path.display(), error = %e, "cannot write the replay pack; reading the whole store instead (slower start-up)");
                Ok(None)
            }
            Err(WriteError::Changed) => {
                tracing::info!(pack = %path.display(), "the store changed while its replay pack was written; the next replay writes it");
                Ok(None)
            }
        }
    }
}

/// Streams every store entry into a new pack (temporary file, fsync), and puts it in place at
/// `path` only if the store is still at the write counter it started from (checked and renamed
/// under the store's lock). Its index is read back by [`Published::read`], which the caller
/// may put off until it has closed the store: for a large store, sled's pages and the index are
/// then not in memory together. A failure to write removes the temporary file; a pack that does
/// not read back is found by [`Published::read`], once published, which deletes it.
///
/// With `keep_unpublished`, a store that moved on meanwhile still gives the pack as written
/// (see [`Store::session_pack`]), its file deleted once open.
fn write(
    store: &Store,
    rules: &MatchRules,
    path: &Path,
    keep_unpublished: bool,
) -> Result<Published, WriteError> {
    write_at(store, rules, path, keep_unpublished, store.settled_generation())
}

/// [`write`] of a pack claiming write `generation`, which the store must still be at to
/// publish it.
fn write_at(
    store: &Store,
    rules: &MatchRules,
    path: &Path,
    keep_unpublished: bool,
    generation: u64,
) -> Result<Published, WriteError> {
    let tmp = path.with_extension("pack.tmp");
    // Read on a thread of its own: the store's pages it reads are allocated in that thread's
    // malloc arena, not among the index and tapes that live on, so the memory goes back to the
    // system once the store is closed instead of staying in the serving process.
    let written = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pack::write(
                    store.entries(),
                    |e, why| store.corrupt(e, why),
                    rules,
                    &tmp,
                    generation,
                )
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    let made = written.and_then(|()| {
        // Opened before the rename: the handle stays valid even if a write deletes the pack
        // right after it is published.
        let file = File::open(&tmp)?;
        match store.publish_pack(generation, || std::fs::rename(&tmp, path))? {
            true => Ok(Published::Written {
                file,
                path: path.to_owned(),
                generation,
                rules: rules.clone(),
            }),
            false if keep_unpublished => {
                std::fs::remove_file(&tmp)?;
                tracing::debug!(pack = %path.display(), "the store was written meanwhile: this session serves the pack as written, the next start writes it again");
                Ok(Published::Written {
                    file,
                    path: tmp.clone(),
                    generation,
                    rules: rules.clone(),
                })
            }
            false => Err(WriteError::Changed),
        }
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::interaction::{Interaction, RecordedRequest};
    use crate::model::key::RequestKey;
    use crate::model::redaction::RedactionStamp;
    use crate::storage::pack::FOOTER_LEN;
    use crate::model::interaction::{Body, RecordedResponse};
use crate::model::recording::Recording;
    use crate::model::redaction::RedactionPolicy;
    use crate::replay::tape::{Play, Sequence, Tapes};

    pub(crate) fn recording(path: &str, statuses: &[&str], redacted: bool) -> Recording {
        let request = RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
            session: None,
        };
        let key = RequestKey::of_recorded(&MatchRules::default(), &request).unwrap();
        let answers = statuses
            .iter()
            .map(|s| Interaction {
                request: request.clone(),
                response: RecordedResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: Body::from_bytes(format!("{{\"status\":\"{s}\"}}").as_bytes()),
                    recorded_at: "2026-11-27T00:00:00Z".into(),
                    latency_ms: 3,
                    upstream: String::new(),
                    other_upstreams: Vec::new(),
                },
                redaction: redacted.then(|| RedactionStamp {
                    policy: RedactionPolicy::default(),
                    key_fingerprint: default_key().fingerprint(),
                    pseudonym_checks: None,
                }),
            })
            .collect();
        Recording { key, answers }
    }

    pub(crate) fn default_key() -> crate::secrets::pseudonym::PseudonymKey {
        crate::secrets::pseudonym::PseudonymKey::from_lookup(|_| None).0
    }

    pub(crate) fn sample() -> Vec<Recording> {
        vec![
            recording("/v2/images/a", &["queued", "saving", "active"], false),
            recording("/v2/images/b", &["active"], true),
            recording("/v2/images/c", &["deleted"], false),
        ]
    }

    pub(crate) async fn store_with(dir: &Path, recordings: &[Recording]) -> Store {
        let store = Store::open(dir).unwrap();
        store.import(recordings).await.unwrap();
        store
    }

    /// What `times` plays of `path` serve, as body text (or the play's kind).
    pub(crate) fn plays(tapes: &Tapes, path: &str, times: usize) -> Vec<String> {
        let key = recording(path, &[], false).key;
        (0..times)
            .map(|_| match tapes.play(&key) {
                hit @ Play::Hit(..) => {
                    String::from_utf8_lossy(hit.prepared().unwrap().body()).into_owned()
                }
                Play::Exhausted(_) => "exhausted".into(),
                Play::Unreadable(e) => format!("unreadable: {e}"),
                Play::Miss => "miss".into(),
            })
            .collect()
    }

    fn packed_tapes(store: &Store) -> Tapes {
        Tapes::from_pack(store.replay_pack().unwrap().unwrap(), Sequence::RepeatLast)
    }

    #[tokio::test]
    async fn a_pack_replays_exactly_what_the_store_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let eager = Tapes::new(
            &store.load(&store.rules().unwrap()).unwrap(),
            Sequence::RepeatLast,
        )
        .unwrap();
        let lazy = packed_tapes(&store);
        assert!(dir.path().join(PACK_FILE).is_file());
        assert_eq!(lazy.stats(), eager.stats());
        for (path, n) in [
            ("/v2/images/a", 4),
            ("/v2/images/b", 2),
            ("/v2/images/zz", 1),
        ] {
            assert_eq!(plays(&lazy, path, n), plays(&eager, path, n), "{path}");
        }
        assert_eq!(
            plays(&lazy, "/v2/images/a", 1),
            vec![r#"{"status":"active"}"#]
        );
        // The redaction stamp travels in the index: a pack-served replay redacts incoming
        // requests like a store-served one.
        let mut lazy = packed_tapes(&store);
        let mut eager = eager;
        assert_eq!(lazy.use_redaction_key(default_key()), None);
        assert_eq!(eager.use_redaction_key(default_key()), None);
        assert!(lazy.redactor().is_some() && eager.redactor().is_some());
    }

    #[tokio::test]
    async fn a_pack_written_while_the_store_moved_on_serves_a_writers_session_unpublished() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let rules = store.rules().unwrap();
        let path = dir.path().join(PACK_FILE);
        // A claim one write behind the store: the store moved on while it was written.
        let behind = store.settled_generation() - 1;
        assert!(matches!(
            write_at(&store, &rules, &path, false, behind),
            Err(WriteError::Changed)
        ));
        let Ok(kept) = write_at(&store, &rules, &path, true, behind) else {
            panic!("a writer's session keeps the pack it wrote");
        };
        let pack = kept.read().unwrap();
        // Neither published nor left behind: the next start writes the pack again.
        assert!(!path.exists() && !path.with_extension("pack.tmp").exists());
        // Its file, open, still serves the session.
        let tapes = Tapes::from_pack(pack, Sequence::RepeatLast);
        assert_eq!(plays(&tapes, "/v2/images/c", 1), [r#"{"status":"deleted"}"#]);
    }

    #[tokio::test]
    async fn a_write_to_the_store_deletes_the_pack_and_an_older_one_is_out_of_date() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let before = store.replay_pack().unwrap().unwrap();
        assert_eq!(before.requests.len(), 3);
        let path = dir.path().join(PACK_FILE);
        let old = std::fs::read(&path).unwrap();
        let d = || [recording("/v2/images/d", &["active"], false)];
        store.import(&d()).await.unwrap();
        // The first write after the pack was made deletes it (a crash could otherwise leave a
        // store whose persisted counter still matches the pack).
        assert!(!path.exists());
        // A pack from before a write (put back here by hand) is refused by its counter.
        std::fs::write(&path, &old).unwrap();
        let why = Pack::open(&path, store.generation(), &store.rules().unwrap()).unwrap_err();
        assert!(why.contains("the store is at #"), "{why}");
        let tapes = packed_tapes(&store);
        assert_eq!(tapes.len(), 4);
        assert_eq!(
            plays(&tapes, "/v2/images/d", 1),
            vec![r#"{"status":"active"}"#]
        );
        // Other match rules make it out of date too.
        let rules = MatchRules {
            match_headers: vec!["accept".into()],
            ignore_query: vec![],
            volatile: Default::default(),
            shift_time: Vec::new(),
        };
        let why = Pack::open(&path, store.generation(), &rules).unwrap_err();
        assert!(why.contains("other match rules"), "{why}");
        // Once rewritten, the next write deletes it again.
        store.import(&d()).await.unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_pack_read_before_its_store_opened_counts_only_while_it_describes_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PACK_FILE);
        // No pack yet: nothing to read early.
        let why = Pack::read(&path).unwrap_err();
        assert!(why.contains("none yet"), "{why}");
        let store = store_with(dir.path(), &sample()).await;
        store.replay_pack().unwrap().unwrap();
        // Read as replay reads it while sled starts: it describes the store, and plays what a
        // pack opened under the store's lock plays.
        let (claim, pack) = Pack::read(&path).unwrap().into_parts();
        assert!(store.is_described_by(&claim, &store.rules().unwrap()));
        let early = Tapes::from_pack(pack, Sequence::RepeatLast);
        let opened = packed_tapes(&store);
        assert_eq!(early.stats(), opened.stats());
        assert_eq!(
            plays(&early, "/v2/images/a", 4),
            plays(&opened, "/v2/images/a", 4)
        );
        // Read, then the store is written (another process recorded before this one got the
        // lock): the claim no longer holds, though the file read is still a well-formed pack.
        let (stale, _) = Pack::read(&path).unwrap().into_parts();
        store
            .import(&[recording("/v2/images/d", &["active"], false)])
            .await
            .unwrap();
        assert!(!store.is_described_by(&stale, &store.rules().unwrap()));
        // Nor does a claim made under other match rules.
        let (claim, _) = {
            store.replay_pack().unwrap().unwrap();
            Pack::read(&path).unwrap().into_parts()
        };
        assert!(store.is_described_by(&claim, &store.rules().unwrap()));
        let other = MatchRules {
            match_headers: vec!["accept".into()],
            ..MatchRules::default()
        };
        let why = claim.check(store.generation(), &other).unwrap_err();
        assert!(why.contains("other match rules"), "{why}");
    }

    #[tokio::test]
    async fn a_damaged_pack_is_refused_and_rewritten_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        store.replay_pack().unwrap().unwrap();
        let path = dir.path().join(PACK_FILE);
        let good = std::fs::read(&path).unwrap();
        let flipped = |at: usize| {
            let mut bytes = good.clone();
            bytes[at] ^= 0x20;
            bytes
        };
        let damages = [
            ("empty", Vec::new()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("index byte", flipped(good.len() - FOOTER_LEN as usize - 10)),
            ("checksum", flipped(good.len() - 20)),
            ("magic", flipped(good.len() - 1)),
            ("offset", flipped(good.len() - FOOTER_LEN as usize + 7)),
        ];
        let rules = store.rules().unwrap();
        for (what, bytes) in damages {
            std::fs::write(&path, &bytes).unwrap();
            let refused = Pack::open(&path, store.generation(), &rules);
            let why = refused.err().unwrap_or_else(|| panic!("{what} was accepted"));
            // A damaged index is named as such (it is read as a stream: whatever its damage
            // made the parse find is not what is said).
            if what == "index byte" || what == "checksum" {
                assert!(why.contains("index checksum mismatch"), "{what}: {why}");
            }
            let tapes = packed_tapes(&store);
            assert_eq!(
                plays(&tapes, "/v2/images/b", 1),
                vec![r#"{"status":"active"}"#],
                "{what}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), good, "{what}: not rewritten");
        }
    }

    #[tokio::test]
    async fn an_answer_that_does_not_decode_is_an_unreadable_play_naming_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let pack = store.replay_pack().unwrap().unwrap();
        let first = pack
            .requests
            .iter()
            .find(|r| r.line.ends_with("/b"))
            .unwrap();
        let at = first.answers[0].offset as usize;
        let path = dir.path().join(PACK_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] = b'#';
        std::fs::write(&path, bytes).unwrap();
        // The index is intact, so the pack opens; the damage shows when the request is played.
        let tapes = packed_tapes(&store);
        let got = plays(&tapes, "/v2/images/b", 1).remove(0);
        assert!(got.starts_with("unreadable: "), "{got}");
        assert!(got.contains(&path.display().to_string()), "{got}");
        assert!(got.contains("checksum"), "{got}");
        assert_eq!(
            plays(&tapes, "/v2/images/c", 1),
            vec![r#"{"status":"deleted"}"#]
        );
    }

    #[tokio::test]
    async fn a_pack_that_cannot_be_written_leaves_replay_to_read_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        // A directory where the pack goes: it can be neither read nor replaced.
        let path = dir.path().join(PACK_FILE);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        assert!(store.replay_pack().unwrap().is_none());
        assert!(path.join("keep").is_file());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    #[tokio::test]
    async fn a_pack_written_that_does_not_read_back_is_refused_naming_it_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let Some(Published::Written {
            file,
            path,
            generation,
            rules,
        }) = store.published_pack().unwrap()
        else {
            panic!("no pack was written");
        };
        // Checked against another write than its own: it does not describe the store.
        let wrong = Published::Written {
            file,
            path: path.clone(),
            generation: generation + 1,
            rules,
        };
        let why = wrong.read().unwrap_err();
        assert!(
            why.contains(&path.display().to_string()) && why.contains("just written"),
            "{why}"
        );
        assert!(!path.exists(), "the pack that does not read back is kept");
        assert!(store.replay_pack().unwrap().is_some());
        assert!(path.is_file());
    }

    #[tokio::test]
    async fn an_answer_changed_by_one_byte_that_still_decodes_is_refused_and_the_pack_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &sample()).await;
        let path = dir.path().join(PACK_FILE);
        drop(store.replay_pack().unwrap().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        // `"deleted"` becomes `"deletes"`: valid JSON, a different answer.
        let at = bytes
            .windows(9)
            .position(|w| w == b"\"deleted\"")
            .unwrap();
        bytes[at + 7] = b's';
        std::fs::write(&path, bytes).unwrap();
        let tapes = packed_tapes(&store);
        let got = plays(&tapes, "/v2/images/c", 1).remove(0);
        assert!(got.starts_with("unreadable: "), "served as a hit: {got}");
        assert!(got.contains(&path.display().to_string()), "{got}");
        assert!(got.contains("checksum"), "{got}");
        // Siblings are still served, and the damaged pack is gone: the next start rebuilds it.
        assert_eq!(plays(&tapes, "/v2/images/a", 1), vec![r#"{"status":"queued"}"#]);
        assert!(!path.exists(), "the damaged pack was kept");
        let rebuilt = packed_tapes(&store);
        assert_eq!(plays(&rebuilt, "/v2/images/c", 1), vec![r#"{"status":"deleted"}"#]);
    }

    /// Entries as the store keeps them, each `(path, redaction stamp JSON)` one answer, the stamp
    /// written into the entry as spelt.
    fn entries_with_stamps(stamps: &[(&str, &str)]) -> Vec<crate::storage::layout::Entry> {
        let mut entries: Vec<_> = stamps
            .iter()
            .map(|(path, stamp)| {
                let mut recording = recording(path, &["active"], false);
                let mut answer = serde_json::to_value(recording.answers.remove(0)).unwrap();
                answer["redaction"] = "STAMP".into();
                let value = serde_json::to_string(&answer).unwrap().replace("\"STAMP\"", stamp);
                let digest = *recording.key.digest();
                crate::storage::layout::Entry {
                    key: sled::IVec::from(&crate::storage::layout::entry_key(&digest, 0)[..]),
                    digest,
                    value: sled::IVec::from(value.as_bytes()),
                }
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
    }

    #[test]
    fn a_pack_carries_each_redaction_once_whatever_values_its_stamps_vouch_for() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("pack.tmp");
        let policy = serde_json::to_value(RedactionPolicy::default()).unwrap();
        let stamp = |key: &str, checks: &str| {
            let mut stamp = policy.clone();
            stamp["key_fingerprint"] = key.into();
            if !checks.is_empty() {
                stamp["pseudonym_checks"] = serde_json::from_str(checks).unwrap();
            }
            stamp.to_string()
        };
        // A field name spelt with escapes is the same name.
        let escaped = |stamp: String| {
            stamp.replace("\"key_fingerprint\"", "\"key\\u005ffingerprint\"")
        };
        let stamps = [
            stamp("k1", r#"["0a0b0c0d"]"#),
            stamp("k1", r#"["01020304","05060708"]"#),
            escaped(stamp("k1", "")),
            stamp("k2", "[]"),
            stamp("k1", r#"["0a0b0c0d"]"#),
            escaped(stamp("k2", r#"["0a0b0c0d"]"#)),
        ];
        let paths: Vec<String> = (0..stamps.len()).map(|i| format!("/v2/images/{i}")).collect();
        let entries = entries_with_stamps(
            &paths.iter().zip(&stamps).map(|(p, s)| (p.as_str(), s.as_str())).collect::<Vec<_>>(),
        );
        let rules = MatchRules::default();
        let corrupt = |_: &crate::storage::layout::Entry, why: String| -> crate::error::Error {
            panic!("refused: {why}")
        };
        assert!(pack::write(entries.into_iter().map(Ok), corrupt, &rules, &tmp, 7).is_ok());
        let pack = Pack::from_file(File::open(&tmp).unwrap(), &tmp)
            .unwrap()
            .check(7, &rules)
            .unwrap();
        let keys: Vec<&str> = pack.stamps.iter().map(|s| s.key_fingerprint.as_str()).collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert!(pack.stamps.iter().all(|s| s.pseudonym_checks.is_none()));
        assert_eq!(pack.requests.len(), stamps.len());
    }

    #[test]
    fn a_stamp_that_is_not_a_redaction_is_refused_naming_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        for stamp in [r#""redacted""#, r#"{"key_fingerprint":5}"#] {
            let entries = entries_with_stamps(&[("/v2/images/x", stamp)]);
            let entry_hex: String = entries[0].key.iter().map(|b| format!("{b:02x}")).collect();
            let corrupt = |e: &crate::storage::layout::Entry, reason: String| {
                crate::error::Error::StoreCorrupt {
                    path: dir.path().to_owned(),
                    entry: e.key.iter().map(|b| format!("{b:02x}")).collect(),
                    reason,
                }
            };
            let written = pack::write(
                entries.into_iter().map(Ok),
                corrupt,
                &MatchRules::default(),
                &dir.path().join("pack.tmp"),
                1,
            );
            match written {
                Err(WriteError::Store(e)) => {
                    let said = e.to_string();
                    assert!(said.contains(&entry_hex), "{stamp}: {said}");
                    assert!(said.contains("invalid type"), "{stamp}: {said}");
                }
                _ => panic!("{stamp}: a pack was written"),
            }
        }
    }
}
