//! Named sessions' bookkeeping: per session, what was asked for, hit, missed and recorded since
//! the session started, its verdict, and the listeners started for it. The default session
//! (no `x-ims-vcr-session` header) is the whole proxy's own counters and costs nothing here.
//!
//! A session's recordings are those whose key carries its name (see
//! [`RequestKey::in_session`](crate::model::key::RequestKey::in_session)), so cursors, hits and
//! misses of two sessions never mix. `stop` returns the verdict and ends the session's playback:
//! its cursors are rewound and its counters start over if the name is used again; the verdict is
//! kept for the exit summary, where a rerun's attempts add up (one that failed keeps the name
//! failed there, though `stop` passes the rerun).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;

use crate::model::digest_map::DigestMap;
use crate::net::outcome::Outcome;
use crate::replay::tape::Tapes;

/// How many distinct missed requests a session lists; further misses are only counted.
const MAX_LISTED_MISSES: usize = 1000;

/// Starts and stops the per-session listeners. Implemented by the server, which owns sockets;
/// the proxy only asks.
pub(crate) trait Listeners: Send + Sync {
    /// Starts (or finds) the listener of `session`; returns its URL.
    fn start(&self, session: &str) -> Result<String, String>;
    /// Closes the listener of `session`, if it has one; in-flight requests finish.
    fn stop(&self, session: &str);
}

/// What one session did since it started.
#[derive(Debug, Default)]
struct Counters {
    hits: u64,
    recorded: u64,
    misses: u64,
    /// Distinct missed requests (request line), in first-missed order, at most
    /// [`MAX_LISTED_MISSES`].
    missed: Vec<String>,
    /// Digests of every request asked for: a recording of the session not in here is unused.
    /// Grown a 256th at a time (see `model/digest_map.rs`): every session's requests take the
    /// lock it is under.
    asked: DigestMap<()>,
}

/// A session's verdict: what `POST /__ims-vcr/sessions/NAME/stop` answers and the exit summary
/// reports per session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SessionVerdict {
    /// The session's name.
    pub session: String,
    /// Requests answered from its recordings.
    pub hits: u64,
    /// Requests that missed (request lines, each once; at most 1,000 listed).
    pub misses: Vec<String>,
    /// How many requests missed in all (a request missed twice counts twice).
    pub miss_count: u64,
    /// Its recordings never asked for.
    pub unused: Vec<String>,
    /// Answers it recorded.
    pub recorded: u64,
    /// False when it missed or, with `--fail-on-unused`, left recordings unused; in the exit
    /// summary and the session list, also when an earlier attempt of the name did.
    pub ok: bool,
    /// How many times the name ran (stopped, then used again: a rerun test). The exit summary
    /// and the session list count every attempt's hits, misses and recordings, and list as
    /// unused those of the last attempt and of any that failed; `stop` answers its own
    /// attempt's verdict.
    pub attempts: u64,
}

impl SessionVerdict {
    /// This verdict of a later attempt of the name, with `earlier`'s counts added: a failed
    /// attempt is never hidden by a rerun that passed. Under `--fail-on-unused`
    /// (`fail_on_unused`) a failed attempt's unused recordings stay listed.
    fn after(mut self, earlier: &SessionVerdict, fail_on_unused: bool) -> SessionVerdict {
        self.hits += earlier.hits;
        self.miss_count += earlier.miss_count;
        self.recorded += earlier.recorded;
        self.ok &= earlier.ok;
        self.attempts += earlier.attempts;
        let mut misses = earlier.misses.clone();
        for miss in std::mem::take(&mut self.misses) {
            if misses.len() < MAX_LISTED_MISSES && !misses.contains(&miss) {
                misses.push(miss);
            }
        }
        self.misses = misses;
        // What failed an earlier attempt under `--fail-on-unused` stays named (a rerun that
        // played it does not make that attempt pass).
        if fail_on_unused && !earlier.ok {
            for unused in &earlier.unused {
                if !self.unused.contains(unused) {
                    self.unused.push(unused.clone());
                }
            }
        }
        self
    }
}

/// The sessions going on, and how often each name was stopped: under one lock, so an answer
/// that comes after its session's stop is told apart before it is counted.
#[derive(Default)]
struct Live {
    counters: BTreeMap<String, Counters>,
    /// Stops per name: the attempt a request of that name belongs to (see [`Attempt`]).
    stops: BTreeMap<String, u64>,
}

/// Which attempt of its session a request came in (how many times the name had been stopped
/// then), kept in the request's extensions. A request still in flight when its session is
/// stopped is answered as it would have been, but counts for nothing in the verdict the stop
/// gave or in the name's next attempt, and what it records follows that attempt's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attempt(pub(crate) u64);

/// The attempt `parts`' request came in (`None` outside named sessions).
pub(crate) fn attempt_of(parts: &hyper::http::request::Parts) -> Option<Attempt> {
    parts.extensions.get::<Attempt>().copied()
}

impl crate::proxy::Proxy {
    /// Whether the attempt of its named session a request came in is over (the session was
    /// stopped since): its answer is then one of an earlier attempt on its request's tape.
    pub(crate) fn attempt_over(
        &self,
        key: &crate::model::key::RequestKey,
        attempt: Option<Attempt>,
    ) -> bool {
        match (key.session(), attempt) {
            (Some(session), Some(attempt)) => self.sessions.is_over(session, attempt),
            _ => false,
        }
    }
}

/// The verdicts of a stopped session.
#[derive(Clone, Debug)]
struct Finished {
    /// What its last `stop` answered (that attempt's own), which `GET …/verdict` gives until
    /// the name is used again.
    last: SessionVerdict,
    /// Its attempts added up ([`SessionVerdict::after`]): what the exit summary and the
    /// session list show.
    all: SessionVerdict,
}

/// Every named session of a proxy.
#[derive(Default)]
pub(crate) struct Sessions {
    /// Held for a counter update or a verdict, never across an await.
    live: Mutex<Live>,
    /// Each stopped session's verdicts: kept when the name is used again, so the exit summary
    /// sees every attempt.
    finished: Mutex<BTreeMap<String, Finished>>,
    /// Set once by the server after the proxy is built.
    listeners: OnceLock<Arc<dyn Listeners>>,
    /// Sessions with a listener, and its URL.
    urls: RwLock<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live
            .lock()
            .expect("no code panics while holding the sessions lock")
    }

    /// The attempt of `session` a request coming now belongs to.
    pub(crate) fn attempt(&self, session: &str) -> Attempt {
        Attempt(self.live().stops.get(session).copied().unwrap_or(0))
    }

    /// Whether `attempt` of `session` was stopped since.
    pub(crate) fn is_over(&self, session: &str, attempt: Attempt) -> bool {
        self.attempt(session) != attempt
    }

    /// Applies `update` to `session`'s counters, unless the request's `attempt` is over.
    fn with(&self, session: &str, attempt: Option<Attempt>, update: impl FnOnce(&mut Counters)) {
        let mut live = self.live();
        let now = Attempt(live.stops.get(session).copied().unwrap_or(0));
        if attempt.is_some_and(|attempt| attempt != now) {
            return;
        }
        if let Some(counters) = live.counters.get_mut(session) {
            update(counters);
            return;
        }
        let mut counters = Counters::default();
        update(&mut counters);
        live.counters.insert(session.to_owned(), counters);
    }

    /// Whether `session` is known here: it made a request, has a listener, or was stopped.
    pub(crate) fn knows(&self, session: &str) -> bool {
        self.live().counters.contains_key(session)
            || self
                .finished
                .lock()
                .expect("no code panics while holding the sessions lock")
                .contains_key(session)
            || self
                .urls
                .read()
                .expect("no code panics while holding the sessions lock")
                .contains_key(session)
    }

    /// The verdict of `session` as it stands: going on, its attempt's verdict so far; stopped
    /// (and not used again since), the verdict its `stop` answered.
    pub(crate) fn current(&self, session: &str, tapes: &Tapes, fail_on_unused: bool) -> SessionVerdict {
        let running = self.live().counters.contains_key(session);
        if !running
            && let Some(finished) = self
                .finished
                .lock()
                .expect("no code panics while holding the sessions lock")
                .get(session)
        {
            return finished.last.clone();
        }
        self.verdict(session, tapes, fail_on_unused)
    }

    /// Notes that `session` asked for the request with `digest`.
    pub(crate) fn asked(&self, session: &str, attempt: Option<Attempt>, digest: &[u8; 32]) {
        self.with(session, attempt, |c| {
            c.asked.insert(*digest, ());
        });
    }

    /// Counts an answer of `session` to a request of `attempt`.
    pub(crate) fn answered(
        &self,
        session: &str,
        attempt: Option<Attempt>,
        outcome: Outcome,
        request_line: &str,
    ) {
        self.with(session, attempt, |c| match outcome {
            Outcome::Hit => c.hits += 1,
            Outcome::Recorded => c.recorded += 1,
            Outcome::Miss => {
                c.misses += 1;
                if c.missed.len() < MAX_LISTED_MISSES && !c.missed.iter().any(|m| m == request_line)
                {
                    c.missed.push(request_line.to_owned());
                }
            }
            _ => {}
        });
    }

    /// The verdict of `session` now.
    pub(crate) fn verdict(&self, session: &str, tapes: &Tapes, fail_on_unused: bool) -> SessionVerdict {
        // Read before the counters' lock is taken: while a store's index is built behind
        // serving this waits for it, and requests of the session must not wait behind it.
        let recorded_lines = tapes.session_tapes(session);
        let unused: Vec<String> = {
            let live = self.live();
            let asked = live.counters.get(session).map(|c| &c.asked);
            recorded_lines
                .into_iter()
                .filter(|(digest, _)| !asked.is_some_and(|a| a.contains_key(digest)))
                .map(|(_, line)| line)
                .collect()
        };
        let live = self.live();
        let counters = live.counters.get(session);
        let (hits, recorded, miss_count, misses) = counters.map_or((0, 0, 0, Vec::new()), |c| {
            (c.hits, c.recorded, c.misses, c.missed.clone())
        });
        SessionVerdict {
            session: session.to_owned(),
            hits,
            ok: miss_count == 0 && (!fail_on_unused || unused.is_empty()),
            misses,
            miss_count,
            unused,
            recorded,
            attempts: 1,
        }
    }

    /// Ends `session`: closes its listener, rewinds its cursors, returns its verdict (kept for
    /// the exit summary) and forgets its counters.
    pub(crate) fn stop(&self, session: &str, tapes: &Tapes, fail_on_unused: bool) -> SessionVerdict {
        if let Some(listeners) = self.listeners.get() {
            listeners.stop(session);
        }
        self.urls
            .write()
            .expect("no code panics while holding the sessions lock")
            .remove(session);
        // From here on a request of this attempt still in flight counts for nothing.
        *self.live().stops.entry(session.to_owned()).or_default() += 1;
        let verdict = self.verdict(session, tapes, fail_on_unused);
        self.live().counters.remove(session);
        tapes.reset_session(Some(session));
        // Used again (a rerun test), the name records afresh: in `record` its answers replace
        // this attempt's instead of following them.
        tapes.start_session_over(session);
        let mut finished = self
            .finished
            .lock()
            .expect("no code panics while holding the sessions lock");
        let all = match finished.get(session) {
            Some(earlier) => verdict.clone().after(&earlier.all, fail_on_unused),
            None => verdict.clone(),
        };
        let last = verdict.clone();
        finished.insert(session.to_owned(), Finished { last, all });
        verdict
    }

    /// Rewinds `session`'s cursors (its counters are kept).
    pub(crate) fn reset(&self, session: &str, tapes: &Tapes) -> usize {
        tapes.reset_session(Some(session))
    }

    /// Starts (or finds) `session`'s own listener; returns its URL.
    pub(crate) fn start(&self, session: &str) -> Result<String, String> {
        let listeners = self
            .listeners
            .get()
            .ok_or("this proxy cannot start session listeners")?;
        let url = listeners.start(session)?;
        self.urls
            .write()
            .expect("no code panics while holding the sessions lock")
            .insert(session.to_owned(), url.clone());
        // Starting a session begins its counting, so a session that asks for nothing still
        // shows up (with its unused recordings) in its verdict.
        self.with(session, None, |_| {});
        Ok(url)
    }

    /// Installs the server's listener starter; later calls are ignored.
    pub(crate) fn set_listeners(&self, listeners: Arc<dyn Listeners>) {
        let _ = self.listeners.set(listeners);
    }

    /// The URL of `session`'s listener, if it has one.
    pub(crate) fn url(&self, session: &str) -> Option<String> {
        self.urls
            .read()
            .expect("no code panics while holding the sessions lock")
            .get(session)
            .cloned()
    }

    /// Every session: those running (verdict now) and those stopped (last verdict), by name.
    /// Sessions that only have recordings (none of their requests asked for yet) are included,
    /// so their unused recordings are reported.
    pub(crate) fn all(&self, tapes: &Tapes, fail_on_unused: bool) -> Vec<SessionVerdict> {
        let mut names: Vec<String> = self.live().counters.keys().cloned().collect();
        for name in tapes.session_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut out: BTreeMap<String, SessionVerdict> = self
            .finished
            .lock()
            .expect("no code panics while holding the sessions lock")
            .iter()
            .map(|(name, finished)| (name.clone(), finished.all.clone()))
            .collect();
        for name in names {
            let running = self.live().counters.contains_key(&name);
            match out.get(&name) {
                // A rerun going on: its counts so far, after the attempts before it.
                Some(earlier) if running => {
                    let now = self.verdict(&name, tapes, fail_on_unused).after(earlier, fail_on_unused);
                    out.insert(name, now);
                }
                Some(_) => {}
                None => {
                    let now = self.verdict(&name, tapes, fail_on_unused);
                    out.insert(name, now);
                }
            }
        }
        out.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_adds_up_and_keeps_what_failed_an_earlier_attempt() {
        let verdict = |ok: bool, unused: &[&str], misses: &[&str]| SessionVerdict {
            session: "s".into(),
            hits: 1,
            misses: misses.iter().map(|m| m.to_string()).collect(),
            miss_count: misses.len() as u64,
            unused: unused.iter().map(|u| u.to_string()).collect(),
            recorded: 0,
            ok,
            attempts: 1,
        };
        let failed = verdict(false, &["GET /x"], &["GET /missed"]);
        let passed = verdict(true, &["GET /y"], &[]);
        let both = passed.clone().after(&failed, true);
        assert!(!both.ok);
        assert_eq!((both.hits, both.miss_count, both.attempts), (2, 1, 2));
        assert_eq!(both.misses, ["GET /missed"]);
        assert_eq!(both.unused, ["GET /y", "GET /x"]);
        // A passed attempt's unused recordings are not kept: the rerun's own are what stand.
        let again = verdict(true, &[], &[]).after(&passed, true);
        assert!(again.ok && again.unused.is_empty());
        // Without `--fail-on-unused` an attempt fails for its misses only: its unused
        // recordings are not what failed it.
        assert_eq!(passed.clone().after(&failed, false).unused, ["GET /y"]);
    }
}
