//! The replay index: every recorded request with its prepared answers and a playback cursor, the
//! sequence policy for requests recorded several times, and what a miss is told (the nearest
//! recordings and how the request differs from the closest one).

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};


use crate::model::interaction::RecordedRequest;
use crate::model::recording::Recording;
use crate::model::digest_map::DigestMap;
use crate::model::key::RequestKey;
use crate::replay::indexing::Indexing;
use crate::storage::pack::{Extent, Pack, PackFile};
use crate::replay::prepared::Prepared;
use crate::secrets::pseudonym::PseudonymKey;
use crate::secrets::redact::{RedactionPolicy, RedactionStamp, Redactor};
use crate::storage::store::Store;

pub use crate::replay::cursors::TapeStats;

/// What replay serves once a request's recorded answers have all been served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sequence {
    /// Serve the last answer again (a polled image stays `active`). The default.
    #[default]
    RepeatLast,
    /// Start over from the first answer.
    Cycle,
    /// Past the end is a miss.
    Strict,
}

impl FromStr for Sequence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "repeat-last" => Ok(Sequence::RepeatLast),
            "cycle" => Ok(Sequence::Cycle),
            "strict" => Ok(Sequence::Strict),
            other => Err(format!(
                "--sequence {other:?}: expected repeat-last, cycle or strict"
            )),
        }
    }
}

/// One request's answers and its playback cursor.
#[derive(Debug)]
pub struct Tape {
    /// `METHOD /path?canonical-query`.
    pub(super) line: String,
    /// The request's session; `None` for the default session.
    pub(super) session: Option<Arc<str>>,
    /// How many answers are recorded (known before a lazy tape is loaded).
    pub(super) count: usize,
    /// The request as first recorded and its prepared answers: set when the tape is made, or,
    /// for a tape from a replay pack, the first time it is played (or diffed against).
    pub(super) loaded: OnceLock<Result<Box<Loaded>, String>>,
    /// Where a lazy tape's answers are.
    pub(super) source: Option<Source>,
    /// How many times this request was asked for since start or the last reset (the cursor).
    pub(super) played: AtomicUsize,
    /// How many times it was asked for since start: a reset rewinds the cursor, but a recording
    /// that was played is still not "unused" (`--fail-on-unused`).
    pub(super) played_total: AtomicUsize,
    /// Recorded in this session (so it was asked for, even if never played back).
    pub(super) recorded: bool,
}

/// Where a lazy tape reads its answers from.
#[derive(Debug)]
pub(super) enum Source {
    /// A replay pack, at these extents.
    Pack(PackFile, Box<[Extent]>),
    /// The store a `record` or `auto` session writes, under this digest (it holds every answer
    /// of the request, so a recorded answer need not stay in memory too).
    Store(Arc<Store>, [u8; 32]),
}

#[derive(Debug)]
pub(crate) struct Loaded {
    /// The request as first recorded (for miss diffs).
    pub(crate) request: RecordedRequest,
    pub(super) answers: Vec<Prepared>,
}

impl Tape {
    pub(super) fn eager(
        key: &RequestKey,
        request: RecordedRequest,
        answers: Vec<Prepared>,
        played: usize,
    ) -> Tape {
        Tape {
            line: key.request_line().to_owned(),
            session: key.session().map(Arc::from),
            count: answers.len(),
            loaded: OnceLock::from(Ok(Box::new(Loaded { request, answers }))),
            source: None,
            played: AtomicUsize::new(played),
            played_total: AtomicUsize::new(played),
            recorded: false,
        }
    }

    /// The request line, e.g. `GET /v2/images/x`.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The request's session; `None` for the default session.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The request as first recorded, when its answers could be read.
    pub fn recorded_request(&self) -> Option<&RecordedRequest> {
        self.loaded().ok().map(|loaded| &loaded.request)
    }

    /// The request and prepared answers, read from the pack or the store on first use. The
    /// error names the file or store and the request.
    pub(crate) fn loaded(&self) -> Result<&Loaded, &str> {
        self.loaded
            .get_or_init(|| {
                let (interactions, from) = match &self.source {
                    Some(Source::Pack(file, extents)) => (file.read(extents)?, file.path()),
                    Some(Source::Store(store, digest)) => (
                        store.answers_of(digest).map_err(|e| e.to_string())?,
                        store.path(),
                    ),
                    None => unreachable!("a tape made without answers has a source"),
                };
                Loaded::of(&interactions, self.count, from, &self.line).map(Box::new)
            })
            .as_deref()
            .map_err(String::as_str)
    }
}

impl Loaded {
    /// The request as first recorded and the first `count` answers of `interactions` (a
    /// request's answers, read from `from`), prepared. The error names `from` and the request.
    pub(super) fn of(
        interactions: &[crate::model::interaction::Interaction],
        count: usize,
        from: &std::path::Path,
        line: &str,
    ) -> Result<Loaded, String> {
        let request = interactions
            .first()
            .map(|i| i.request.clone())
            .ok_or_else(|| format!("{}: {line} has no answers", from.display()))?;
        let answers = interactions
            .iter()
            .take(count)
            .map(Prepared::from_interaction)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {line}: {e}", from.display()))?;
        Ok(Loaded { request, answers })
    }
}

/// The outcome of looking a request up.
pub enum Play {
    /// The answer to serve.
    Hit(Arc<Tape>, usize),
    /// Recorded, but every answer was served: under `--sequence strict`, or in `auto` mode
    /// for answers recorded in this session ([`Tapes::play_extending`]).
    Exhausted(#[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))] Arc<Tape>),
    /// Recorded, but its answers could not be read back from the replay pack or the store (the
    /// message says which, and which request).
    Unreadable(String),
    /// Not recorded.
    Miss,
}

impl Play {
    /// The prepared answer of a hit.
    pub fn prepared(&self) -> Option<&Prepared> {
        match self {
            Play::Hit(tape, index) => tape.loaded().ok()?.answers.get(*index),
            _ => None,
        }
    }
}

/// The tapes by request digest: hashed by 8 of its bytes, and grown a 256th at a time, so that
/// recording new requests never holds every lookup up while the whole index is rehashed (see
/// `model/digest_map.rs`).
pub(crate) type TapeIndex = DigestMap<Arc<Tape>>;

/// All recordings, ready to serve; grows in record and auto modes.
#[derive(Debug, Default)]
pub struct Tapes {
    /// Read on every request, written only when an answer is recorded; never held across await.
    /// Shared with a miss's search for its nearest recordings, which runs on a blocking thread.
    pub(super) tapes: Arc<RwLock<TapeIndex>>,
    /// Taken by a miss's search (`miss.rs`): one runs at a time.
    pub(super) searching: tokio::sync::Mutex<()>,
    pub(super) sequence: Sequence,
    /// The distinct redaction stamps the recordings carry.
    pub(super) stamps: Vec<RedactionStamp>,
    /// Redacts incoming requests so clients sending real values match redacted recordings. Set
    /// once: at start-up, or when a store's index is built behind serving.
    pub(super) redactor: OnceLock<Redactor>,
    /// A store's index being built behind serving (`replay::indexing`), until then and after.
    pub(super) indexing: Option<Arc<Indexing>>,
}

impl Tapes {
    /// Prepares every recording. Fails naming the request whose stored answer is invalid.
    pub fn new(recordings: &[Recording], sequence: Sequence) -> Result<Tapes, String> {
        let mut tapes = TapeIndex::with_capacity(recordings.len());
        let mut stamps: Vec<RedactionStamp> = Vec::new();
        for recording in recordings {
            let answers = recording
                .answers
                .iter()
                .map(Prepared::from_interaction)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", recording.key.request_line()))?;
            let Some(first) = recording.answers.first() else {
                continue;
            };
            for stamp in recording
                .answers
                .iter()
                .filter_map(|a| a.redaction.as_ref())
            {
                // Each distinct redaction (policy and key), not the values each vouches for.
                if !stamps.iter().any(|s| s.same_redaction(stamp)) {
                    stamps.push(RedactionStamp {
                        pseudonym_checks: None,
                        ..stamp.clone()
                    });
                }
            }
            let tape = Tape::eager(&recording.key, first.request.clone(), answers, 0);
            tapes.insert(*recording.key.digest(), Arc::new(tape));
        }
        Ok(Tapes {
            tapes: Arc::new(RwLock::new(tapes)),
            searching: Default::default(),
            sequence,
            stamps,
            redactor: OnceLock::new(),
            indexing: None,
        })
    }

    /// Indexes the requests of a replay pack; each is read and prepared the first time it is
    /// played, so start-up costs only the index.
    pub fn from_pack(pack: Pack, sequence: Sequence) -> Tapes {
        let (tapes, stamps) = index_of_pack(pack);
        Tapes {
            tapes: Arc::new(RwLock::new(tapes)),
            searching: Default::default(),
            sequence,
            stamps,
            redactor: OnceLock::new(),
            indexing: None,
        }
    }

    /// Every recording: when a store's index is being built behind serving, this waits for it
    /// (see [`Tapes::until_indexed`] for waiting without blocking a runtime thread).
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, TapeIndex> {
        if let Some(indexing) = &self.indexing {
            indexing.wait();
            self.merge_if_built();
        }
        self.read_now()
    }

    /// The recordings indexed so far: all of them, unless a store's index is being built.
    pub(super) fn read_now(&self) -> std::sync::RwLockReadGuard<'_, TapeIndex> {
        self.tapes
            .read()
            .expect("no code panics while holding the tapes lock")
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, TapeIndex> {
        self.tapes
            .write()
            .expect("no code panics while holding the tapes lock")
    }

    /// Lets clients that send real values match recordings redacted with `key`. Returns a
    /// warning when the recordings were redacted with another key (real values then cannot
    /// match; pseudonyms still do).
    pub fn use_redaction_key(&mut self, key: PseudonymKey) -> Option<String> {
        // A store's index built behind serving was given the key, and says this when it is done.
        if self.indexing.is_some() {
            return None;
        }
        let (redactor, warning) = redaction_for(&self.stamps, key);
        self.redactor = redactor.map(OnceLock::from).unwrap_or_default();
        warning
    }

    /// The redactor for incoming requests, when the recordings are redacted with the current key.
    pub fn redactor(&self) -> Option<&Redactor> {
        self.redactor.get()
    }

    /// Number of recorded requests.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The next answer for `key` under the sequence policy.
    pub fn play(&self, key: &RequestKey) -> Play {
        self.play_as(key, false)
    }

    /// [`Tapes::play`] for `auto` mode: a request whose answers were all recorded in this
    /// session and have all been played is [`Play::Exhausted`], whatever the sequence policy,
    /// so it is forwarded and its answer appended (a client polling an image until it is
    /// `active` sees it change while it is being recorded). Answers from before the session
    /// play under the policy, as in replay.
    pub fn play_extending(&self, key: &RequestKey) -> Play {
        self.play_as(key, true)
    }

    fn play_as(&self, key: &RequestKey, extending: bool) -> Play {
        let found = self.read_now().get(key.digest()).cloned();
        let tape = match found {
            // A store that turned out unreadable answers every request with why.
            _ if let Some(why) = self.indexing_failure() => {
                return Play::Unreadable(why.to_owned());
            }
            Some(tape) => tape,
            // The store's index is still being built: the store has it, or nobody does.
            None if self.is_indexing() => match self.play_from_store(key) {
                Ok(Some(tape)) => tape,
                Ok(None) => return Play::Miss,
                Err(why) => return Play::Unreadable(why),
            },
            None => return Play::Miss,
        };
        if let Err(e) = tape.loaded() {
            return Play::Unreadable(e.to_owned());
        }
        let served = tape.played.fetch_add(1, Ordering::Relaxed);
        tape.played_total.fetch_add(1, Ordering::Relaxed);
        let len = tape.count;
        if extending && tape.recorded && served >= len {
            return Play::Exhausted(tape);
        }
        let index = match self.sequence {
            Sequence::RepeatLast => served.min(len - 1),
            Sequence::Cycle => served % len,
            Sequence::Strict if served < len => served,
            Sequence::Strict => return Play::Exhausted(tape),
        };
        Play::Hit(tape, index)
    }

    /// Answer `index` (0-based) of `key`'s recording, without moving its cursor: an auto-mode
    /// client that waited on another client's exchange replays the answer that exchange stored
    /// (`proxy::record`), and later requests play the tape as if it had not been there.
    pub fn answer(&self, key: &RequestKey, index: usize) -> Play {
        let Some(tape) = self.read_now().get(key.digest()).cloned() else {
            return Play::Miss;
        };
        let held = match tape.loaded() {
            Ok(loaded) => index < loaded.answers.len(),
            Err(why) => return Play::Unreadable(why.to_owned()),
        };
        if held { Play::Hit(tape, index) } else { Play::Miss }
    }

    /// Notes an answer a `record`/`auto` session just stored in `store` under `stored` (the
    /// request as stored: redaction may change it) as answer number `seq` (0-based), for
    /// requests matching `key`, and taken: the client whose exchange it was got it live, so
    /// the cursor moves past it (the next request plays the answer after it; in `auto`, past
    /// the end, it is forwarded too: [`Tapes::play_extending`]). The tape reads its answers
    /// back from the store when first played, so a long session does not hold every answer in
    /// memory. The first answer of a session starts the tape over at the store's count (a
    /// `record` session replaces older answers); a cursor already further stays where it is.
    ///
    /// `late`: the answer's request came in an attempt of its session stopped since: the
    /// answer follows that attempt's on the tape, which stays what it was (of this session, or
    /// of an earlier one once the stop made it so), its cursor where the stop left it.
    pub fn record_stored(
        &self,
        key: &RequestKey,
        stored: &RequestKey,
        store: &Arc<Store>,
        seq: u32,
        late: impl FnOnce() -> bool,
    ) {
        let mut tapes = self.write();
        // Asked under the lock a session's stop rewinds its tapes under: either the stop came
        // first (late) or it rewinds this tape after.
        let late = late();
        // Answer `seq` makes `seq + 1` answers in the store. Concurrent answers to one request
        // may get here out of order, so within the session the highest count wins; a tape from
        // before the session counts for nothing (its answers were replaced, or are included).
        let in_store = seq as usize + 1;
        let counters = |old: &Tape| {
            (
                old.played.load(Ordering::Relaxed),
                old.played_total.load(Ordering::Relaxed),
            )
        };
        let old = tapes.get(key.digest());
        let (count, (played, played_total)) = match old {
            Some(old) if old.recorded => (old.count.max(in_store), counters(old)),
            Some(old) => (in_store, counters(old)),
            None => (in_store, (0, 0)),
        };
        // Taken by the client whose exchange it was: it was played, and the cursor is past it
        // (not a late one's: its session's cursors were rewound when it stopped).
        let played = if late { played } else { played.max(in_store) };
        let played_total = played_total.max(1);
        // A late answer adds to the tape as it is, one of this session or of an earlier one.
        let recorded = !late || old.is_some_and(|old| old.recorded);
        let count = match (late, old) {
            (true, Some(old)) => old.count.max(in_store),
            _ => count,
        };
        let tape = Tape {
            // Shown in miss reports and the unused recordings: an access key id masked.
            line: crate::model::access_keys::masked(key.request_line()).into_owned(),
            session: key.session().map(Arc::from),
            count,
            loaded: OnceLock::new(),
            source: Some(Source::Store(store.clone(), *stored.digest())),
            played: AtomicUsize::new(played),
            played_total: AtomicUsize::new(played_total),
            recorded,
        };
        tapes.insert(*key.digest(), Arc::new(tape));
    }
}

/// The index of a replay pack's requests (each read the first time it is played), and the
/// distinct redaction stamps the pack carries.
pub(super) fn index_of_pack(pack: Pack) -> (TapeIndex, Vec<RedactionStamp>) {
    let file = pack.file().clone();
    // Sized once: collecting through the filter would grow the map from nothing, rehashing
    // every entry at each doubling (100,000 requests: 17 times).
    let mut tapes = TapeIndex::with_capacity(pack.requests.len());
    let mut requests = pack.requests;
    // Taken from the end, the list shrunk as it empties: the tapes are made while the list
    // still holds what is not made yet, and it was the largest thing in memory besides them
    // (for 158,000 requests: 15 MB on top of the tapes' 37 MB at start-up's peak). Requests
    // whose recomputed keys coincide: the later one wins, as in `Tapes::new`.
    while let Some(r) = requests.pop() {
        if requests.len() < requests.capacity() / 2 && requests.capacity() >= 4096 {
            requests.shrink_to_fit();
        }
        if r.answers.is_empty() {
            continue;
        }
        tapes.get_or_insert_with(r.digest, || {
            Arc::new(Tape {
                line: r.line,
                session: r.session.map(Arc::from),
                count: r.answers.len(),
                loaded: OnceLock::new(),
                source: Some(Source::Pack(file.clone(), r.answers)),
                played: AtomicUsize::new(0),
                played_total: AtomicUsize::new(0),
                recorded: false,
            })
        });
    }
    (tapes, pack.stamps)
}

/// The redactor that lets clients sending real values match recordings redacted with `key`
/// (none when no recording is), and a warning when recordings were redacted with another key
/// (real values then cannot match; pseudonyms still do).
pub(super) fn redaction_for(
    stamps: &[RedactionStamp],
    key: PseudonymKey,
) -> (Option<Redactor>, Option<String>) {
    let mut policy = RedactionPolicy {
        fields: vec![],
        headers: vec![],
        query: vec![],
    };
    let mut foreign = Vec::new();
    for stamp in stamps {
        if stamp.key_fingerprint == key.fingerprint() {
            let p = &stamp.policy;
            policy.extend(&p.fields, &p.headers, &p.query);
        } else if !foreign.contains(&stamp.key_fingerprint) {
            foreign.push(stamp.key_fingerprint.clone());
        }
    }
    let any = !(policy.fields.is_empty() && policy.headers.is_empty() && policy.query.is_empty());
    let warning = (!foreign.is_empty()).then(|| {
        let public = crate::secrets::pseudonym::PseudonymKey::new(crate::secrets::pseudonym::DEFAULT_KEY.as_bytes());
        let ours = match key.fingerprint() == public.fingerprint() {
            true => format!("the key in use is the public default, {} (IMS_VCR_REDACT_KEY is not set, empty, or that key)", key.fingerprint()),
            false => format!("IMS_VCR_REDACT_KEY is {}", key.fingerprint()),
        };
        format!(
            "recordings were redacted with key {} but {ours}: requests carrying real owner/project \
             values will not match (requests carrying the pseudonyms still do)",
            foreign.join(", "),
        )
    });
    (any.then(|| Redactor::new(policy, key)), warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::key::MatchRules;
    use crate::replay::miss::{DISTANCE_CANDIDATES, diff, shared_segments};
    use crate::model::fixtures::{self, recording};
    use crate::model::interaction::Body;

    fn request(path: &str, query: Option<&str>) -> RecordedRequest {
        RecordedRequest {
            query: query.map(str::to_owned),
            ..fixtures::get(path)
        }
    }

    fn played(tapes: &Tapes, key: &RequestKey, times: usize) -> Vec<String> {
        (0..times)
            .map(|_| match tapes.play(key) {
                hit @ Play::Hit(..) => {
                    String::from_utf8_lossy(hit.prepared().unwrap().body()).into_owned()
                }
                Play::Exhausted(_) => "exhausted".into(),
                Play::Unreadable(e) => e,
                Play::Miss => "miss".into(),
            })
            .collect()
    }

    const Q: &str = r#"{"status":"queued"}"#;
    const S: &str = r#"{"status":"saving"}"#;
    const A: &str = r#"{"status":"active"}"#;

    #[test]
    fn the_key_warning_says_when_the_key_in_use_is_the_public_default() {
        let stamp = |fingerprint: &str| RedactionStamp {
            policy: RedactionPolicy { fields: vec!["owner".into()], headers: vec![], query: vec![] },
            key_fingerprint: fingerprint.into(),
            pseudonym_checks: None,
        };
        let public = PseudonymKey::new(crate::secrets::pseudonym::DEFAULT_KEY.as_bytes());
        let (_, warning) = redaction_for(&[stamp("hmac-sha256:4af1000000000000")], public);
        let warning = warning.unwrap();
        assert!(warning.contains("public default") && warning.contains("IMS_VCR_REDACT_KEY is not set"), "{warning}");
        let (_, warning) = redaction_for(&[stamp("hmac-sha256:4af1000000000000")], PseudonymKey::new(b"team-key"));
        assert!(warning.unwrap().contains("but IMS_VCR_REDACT_KEY is hmac-sha256:"));
    }

    #[test]
    fn each_sequence_policy_plays_as_documented() {
        let rec = recording("/v2/images/p", &["queued", "saving", "active"]);
        let cases = [
            (Sequence::RepeatLast, vec![Q, S, A, A, A]),
            (Sequence::Cycle, vec![Q, S, A, Q, S]),
            (Sequence::Strict, vec![Q, S, A, "exhausted", "exhausted"]),
        ];
        for (sequence, expected) in cases {
            let tapes = Tapes::new(std::slice::from_ref(&rec), sequence).unwrap();
            assert_eq!(played(&tapes, &rec.key, 5), expected, "{sequence:?}");
            assert_eq!(tapes.reset(None), 1);
            assert_eq!(
                played(&tapes, &rec.key, 1),
                vec![Q],
                "{sequence:?} after reset"
            );
        }
    }

    #[test]
    fn reset_can_target_one_request() {
        let (a, b) = (
            recording("/a", &["queued", "saving"]),
            recording("/b", &["queued", "saving"]),
        );
        let tapes = Tapes::new(&[a.clone(), b.clone()], Sequence::RepeatLast).unwrap();
        played(&tapes, &a.key, 1);
        played(&tapes, &b.key, 1);
        assert_eq!(tapes.reset(Some(&a.key.hex())), 1);
        assert_eq!(played(&tapes, &a.key, 1), vec![Q]);
        assert_eq!(played(&tapes, &b.key, 1), vec![S]);
    }

    #[test]
    fn a_reset_rewinds_the_cursor_but_a_played_recording_stays_used() {
        let (a, b) = (recording("/a", &["queued"]), recording("/b", &["queued"]));
        let tapes = Tapes::new(&[a.clone(), b], Sequence::RepeatLast).unwrap();
        played(&tapes, &a.key, 2);
        tapes.reset(None);
        let stats = tapes.stats();
        assert_eq!((stats[0].played, stats[0].played_total), (0, 2));
        assert!(!stats[0].unused(), "played before the reset");
        assert!(stats[1].unused(), "never played");
    }

    #[tokio::test]
    async fn answers_recorded_live_are_read_back_from_the_store_in_any_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recording("/p", &["queued"]);
        let saving = recording("/p", &["saving"]).answers.remove(0);
        {
            // A first session records three answers; its replay pack holds them.
            let store = Store::open(dir.path()).unwrap();
            for answer in [&rec.answers[0], &saving, &saving] {
                store.record(&rec.key, answer, true).await.unwrap();
            }
            store.flush().await.unwrap();
        }
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let pack = store.replay_pack().unwrap().unwrap();
        let tapes = Tapes::from_pack(pack, Sequence::RepeatLast);
        assert_eq!(tapes.stats()[0].answers, 3);
        played(&tapes, &rec.key, 1);
        // The next session replaces them with two answers, whose notes arrive out of order
        // (two concurrent requests): the tape counts what the store holds, and its cursor is
        // past both (each client took its answer live).
        let first = store.record(&rec.key, &rec.answers[0], true).await.unwrap();
        let second = store.record(&rec.key, &saving, true).await.unwrap();
        assert_eq!((first, second), (0, 1));
        tapes.record_stored(&rec.key, &rec.key, &store, second, || false);
        tapes.record_stored(&rec.key, &rec.key, &store, first, || false);
        let stats = &tapes.stats()[0];
        assert_eq!((stats.answers, stats.played, stats.recorded), (2, 2, true));
        tapes.reset(None);
        assert_eq!(played(&tapes, &rec.key, 3), vec![Q, S, S]);
        assert_eq!(store.answers_of(rec.key.digest()).unwrap().len(), 2);
    }

    #[test]
    fn shared_segments_counts_like_splitting_on_slashes() {
        let by_split = |a: &str, b: &str| {
            a.split('/')
                .zip(b.split('/'))
                .take_while(|(x, y)| x == y)
                .count()
        };
        let paths = [
            "",
            "/",
            "/v2",
            "/v2/",
            "/v2/images",
            "/v2/images/",
            "/v2/imagesX",
            "/v2/images/x",
            "/v2/images/y",
            "/v2/images/x/file",
            "v2/images",
            "//v2",
        ];
        for a in paths {
            for b in paths {
                assert_eq!(shared_segments(a, b), by_split(a, b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn nearest_finds_a_one_edit_neighbour_among_many_more_than_it_measures() {
        let id = |n: usize| format!("/v2/images/{n:08x}-0000-4000-8000-{n:012x}");
        let recs: Vec<Recording> = (0..DISTANCE_CANDIDATES * 8)
            .map(|n| recording(&id(n), &["a"]))
            .collect();
        let tapes = Tapes::new(&recs, Sequence::RepeatLast).unwrap();
        let wanted = id(1000);
        // One character changed at the start, the middle and the end of the id.
        for at in [11, 30, wanted.len() - 1] {
            let mut probe = wanted.clone().into_bytes();
            probe[at] = b'z';
            let probe = String::from_utf8(probe).unwrap();
            let key = recording(&probe, &["a"]).key;
            let nearest = tapes.nearest(&key, 3);
            assert_eq!(
                nearest[0].line(),
                format!("GET {wanted}"),
                "changed at {at}"
            );
            assert_eq!(nearest.len(), 3);
        }
    }

    #[tokio::test]
    async fn a_misss_search_runs_apart_from_the_runtime_so_requests_meanwhile_do_not_wait() {
        let id = |n: usize| format!("/v2/images/{n:08x}-0000-4000-8000-{n:012x}");
        let recs: Vec<Recording> = (0..DISTANCE_CANDIDATES * 8)
            .map(|n| recording(&id(n), &["a"]))
            .collect();
        let tapes = Arc::new(Tapes::new(&recs, Sequence::RepeatLast).unwrap());
        let mut probe = id(1000).into_bytes();
        probe[30] = b'z';
        let key = recording(std::str::from_utf8(&probe).unwrap(), &["a"]).key;
        // One runtime thread (the test's): a search on it would end before anything else ran.
        let search = tokio::spawn({
            let (tapes, key) = (tapes.clone(), key.clone());
            async move { tapes.neighbours(&key, 3, true).await }
        });
        tokio::task::yield_now().await;
        assert!(!search.is_finished(), "the search left the runtime's thread to itself");
        // A lookup (what a hit is) is answered meanwhile.
        let hit = recording(&id(7), &["a"]).key;
        assert!(tapes.play(&hit).prepared().is_some());
        let found = search.await.unwrap();
        assert_eq!(found.nearest[0].line(), format!("GET {}", id(1000)));
        assert_eq!(found.nearest.len(), 3);
        assert!(found.elsewhere.is_empty(), "recorded in no other session");
    }

    #[test]
    fn nearest_prefers_the_closest_request_line() {
        let recs = [
            recording("/v2/images/aaaa", &["a"]),
            recording("/v2/schemas/image", &["a"]),
        ];
        let tapes = Tapes::new(&recs, Sequence::RepeatLast).unwrap();
        let lines = |probe: &str| {
            let key = recording(probe, &["a"]).key;
            tapes
                .nearest(&key, 1)
                .iter()
                .map(|t| t.line().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(lines("/v2/images/aaab"), ["GET /v2/images/aaaa"]);
        // Sharing `/v2/images` beats a shorter edit distance to another route.
        assert_eq!(lines("/v2/images/zz"), ["GET /v2/images/aaaa"]);
    }

    #[test]
    fn the_miss_diff_names_each_differing_part() {
        let rules = MatchRules {
            match_headers: vec!["x-project-id".into()],
            ignore_query: vec!["marker".into()],
            volatile: Default::default(),
            shift_time: Vec::new(),
        };
        let mut recorded = request("/v2/images", Some("limit=10&owner=a&marker=1"));
        recorded.headers = vec![("x-project-id".into(), "p1".into())];
        let key = RequestKey::of_recorded(&rules, &recorded).unwrap();
        let tape = Tape::eager(&key, recorded, vec![], 0);
        let mut got = request("/v2/images", Some("limit=20&owner=a&marker=2&extra=1"));
        got.method = "POST".into();
        got.headers = vec![("x-project-id".into(), "p2".into())];
        got.body = Body::from_bytes(b"{}");
        let parts: Vec<String> = diff(&rules, &got, &tape)
            .iter()
            .map(|d| {
                format!(
                    "{}:{}",
                    d["part"].as_str().unwrap(),
                    d["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            parts,
            [
                "method:",
                "query:extra",
                "query:limit",
                "header:x-project-id",
                "body:"
            ]
        );
    }

    #[test]
    fn the_miss_diff_sees_value_order_and_never_shows_or_counts_a_credential() {
        let rules = MatchRules::default();
        let mut recorded = request(
            "/v2/images",
            Some("sort_key=name&sort_key=size&access_token=REDACTED"),
        );
        recorded.headers = vec![("content-type".into(), "application/json".into())];
        recorded.body = Body::from_bytes(br#"{"name":"n","password":"REDACTED"}"#);
        let key = RequestKey::of_recorded(&MatchRules::default(), &recorded).unwrap();
        let tape = Tape::eager(&key, recorded.clone(), vec![], 0);
        let mut got = request(
            "/v2/images",
            Some("sort_key=size&sort_key=name&access_token=live-token-123"),
        );
        got.headers = recorded.headers.clone();
        got.body = Body::from_bytes(br#"{"name":"n","password":"live-pw-456"}"#);
        let differences = diff(&rules, &got, &tape);
        let text = serde_json::to_string(&differences).unwrap();
        assert!(!text.contains("live-token-123") && !text.contains("live-pw-456"), "{text}");
        let parts: Vec<String> = differences
            .iter()
            .map(|d| format!("{}:{}", d["part"].as_str().unwrap(), d["name"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(parts, ["query:sort_key"], "{text}");
    }
}
