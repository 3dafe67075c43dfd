//! The tapes' cursors and counts: rewinding them (all, one request's, a session's), making a
//! stopped session's recordings ones of an earlier session, and what `stats`, the session
//! verdicts and `--fail-on-unused` read of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::model::key::hex;
use crate::replay::tape::{Source, Tape, Tapes};
#[cfg(doc)]
use crate::storage::store::Store;

/// Per-request counters for `stats` and the shutdown summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapeStats {
    /// Request line.
    pub request: String,
    /// The request's session; `None` for the default session.
    pub session: Option<String>,
    /// Hex digest of the request key.
    pub key: String,
    /// Answers recorded.
    pub answers: usize,
    /// Times asked for since start or the last reset.
    pub played: usize,
    /// Times asked for since start (a reset does not change it).
    pub played_total: usize,
    /// Whether this session recorded an answer for it (record and auto).
    pub recorded: bool,
}

impl TapeStats {
    /// Never played since start (a reset does not make a played recording unused), and not
    /// recorded this session: what `--fail-on-unused` reports.
    pub fn unused(&self) -> bool {
        self.played_total == 0 && !self.recorded
    }
}

impl Tapes {
    /// Rewinds every cursor (or those of the recordings whose key starts with `key`, lower-case
    /// hex); returns how many were rewound. What was played stays played ([`TapeStats::unused`]).
    pub fn reset(&self, key: Option<&str>) -> usize {
        self.reset_where(|digest, _| key.is_none_or(|k| hex(digest).starts_with(k)))
    }

    /// Rewinds the cursors of one session's recordings; returns how many were rewound.
    pub fn reset_session(&self, session: Option<&str>) -> usize {
        self.reset_where(|_, tape| tape.session() == session)
    }

    /// Makes every recording of `session` made by this process one from an earlier session, as
    /// a session stopped and started again needs: its cursors rewound, and the next answer
    /// recorded for a request counted from the store (which starts the request over in the
    /// session's next attempt, see [`Store::record_in_attempt`]).
    pub fn start_session_over(&self, session: &str) {
        let mut tapes = self.write();
        for tape in tapes.values_mut() {
            if !tape.recorded || tape.session() != Some(session) {
                continue;
            }
            let Some(Source::Store(store, digest)) = &tape.source else {
                continue;
            };
            *tape = Arc::new(Tape {
                line: tape.line.clone(),
                session: tape.session.clone(),
                count: tape.count,
                loaded: OnceLock::new(),
                source: Some(Source::Store(store.clone(), *digest)),
                played: AtomicUsize::new(0),
                played_total: AtomicUsize::new(tape.played_total.load(Ordering::Relaxed)),
                recorded: false,
            });
        }
    }

    fn reset_where(&self, wanted: impl Fn(&[u8; 32], &Tape) -> bool) -> usize {
        let tapes = self.read();
        let mut count = 0;
        for (digest, tape) in tapes.iter() {
            if wanted(digest, tape) {
                tape.played.store(0, Ordering::Relaxed);
                count += 1;
            }
        }
        count
    }

    /// The digest and request line of each recording of `session`, sorted by line.
    pub fn session_tapes(&self, session: &str) -> Vec<([u8; 32], String)> {
        let mut out: Vec<([u8; 32], String)> = self
            .read()
            .iter()
            .filter(|(_, tape)| tape.session() == Some(session))
            .map(|(digest, tape)| (*digest, tape.line.clone()))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Where the store keeps the answers of each recording of `session`: their digests in the
    /// store (a recording's own, or the stored request's when redaction changed the request).
    pub fn session_stored(&self, session: &str) -> Vec<[u8; 32]> {
        self.read()
            .iter()
            .filter(|(_, tape)| tape.session() == Some(session))
            .map(|(digest, tape)| stored_digest(digest, tape))
            .collect()
    }

    /// Forgets the recordings whose answers the store no longer holds (`swept`: digests in the
    /// store, see [`Store::record_sweeping`]).
    /// A tape this session recorded (a request of the attempt that swept, stored meanwhile)
    /// is kept: its answers are this attempt's.
    pub fn forget_stored(&self, swept: &[[u8; 32]]) {
        let swept: std::collections::HashSet<&[u8; 32]> = swept.iter().collect();
        let mut tapes = self.write();
        let gone: Vec<[u8; 32]> = (tapes.iter())
            .filter(|(digest, tape)| !tape.recorded && swept.contains(&stored_digest(digest, tape)))
            .map(|(digest, _)| *digest)
            .collect();
        for digest in gone {
            tapes.remove(&digest);
        }
    }

    /// Whether any recording is of `session`.
    pub fn has_session(&self, session: &str) -> bool {
        self.read().values().any(|tape| tape.session() == Some(session))
    }

    /// The names of the sessions that have recordings, sorted.
    pub fn session_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .read()
            .values()
            .filter_map(|tape| tape.session().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Counters per recorded request, sorted by request line.
    pub fn stats(&self) -> Vec<TapeStats> {
        let mut out: Vec<TapeStats> = self
            .read()
            .iter()
            .map(|(digest, tape)| TapeStats {
                request: tape.line.clone(),
                session: tape.session.as_deref().map(str::to_owned),
                key: hex(digest),
                answers: tape.count,
                played: tape.played.load(Ordering::Relaxed),
                played_total: tape.played_total.load(Ordering::Relaxed),
                recorded: tape.recorded,
            })
            .collect();
        out.sort_by(|a, b| a.request.cmp(&b.request).then_with(|| a.key.cmp(&b.key)));
        out
    }
}

/// Where the store keeps the answers of the tape under `digest`.
fn stored_digest(digest: &[u8; 32], tape: &Tape) -> [u8; 32] {
    match &tape.source {
        Some(Source::Store(_, stored)) => *stored,
        _ => *digest,
    }
}
