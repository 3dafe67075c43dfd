//! One source for what the proxy reports about itself: the counters behind `/__ims-vcr/stats`,
//! the exit summary (and the in-process [`Summary`]) and `--fail-on-*` verdicts. Prometheus
//! rendering of the per-route counters is `metrics.rs`.

use std::sync::atomic::Ordering;

use crate::model::count;
use crate::net::outcome::Outcome;
use crate::proxy::sessions::SessionVerdict;
use crate::proxy::{Miss, Mode, Proxy};
use crate::replay::tape::TapeStats;

/// What a server did, returned by `ProxyServer::shutdown`: the CI verdict material.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Mode at shutdown.
    pub mode: Option<Mode>,
    /// Requests answered from recordings.
    pub hits: u64,
    /// Requests without a recording (with their nearest recordings and diff): the first 1,000
    /// distinct ones.
    pub misses: Vec<Miss>,
    /// Misses of requests beyond those kept in `misses` (counted, not listed).
    pub untracked_misses: u64,
    /// Recorded requests never asked for (request lines, with ` | session: NAME` in a named
    /// session).
    pub unused: Vec<String>,
    /// Answers recorded.
    pub recorded: u64,
    /// Answers served live that the store failed to take (a full disk, a store turned
    /// unwritable): a recording session that lost some did not record what it served.
    pub not_stored: u64,
    /// Requests answered 502 because the upstream failed.
    pub upstream_errors: u64,
    /// Answers served live that the leak gate or redaction refused to store: replay serves a
    /// `599 IMS_VCR.NOT_RECORDED` in their place.
    pub refused: u64,
    /// Each named session's verdict (`x-ims-vcr-session`), by name; the counts above include
    /// them.
    pub sessions: Vec<SessionVerdict>,
}

impl Summary {
    /// Total misses (a request missed twice counts twice).
    pub fn miss_count(&self) -> u64 {
        self.misses.iter().map(|m| m.count).sum::<u64>() + self.untracked_misses
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ims-vcr summary: {}, {}, {} recorded, {}, {}",
            count(self.hits, "hit", "hits"),
            count(self.miss_count(), "miss", "misses"),
            self.recorded,
            count(self.upstream_errors, "upstream error", "upstream errors"),
            count(self.unused.len(), "unused recording", "unused recordings"),
        )?;
        if self.not_stored > 0 {
            writeln!(
                f,
                "  NOT STORED: {} served live but not recorded, because the store failed (see \
                 the errors above); replay will miss {}",
                count(self.not_stored, "answer was", "answers were"),
                if self.not_stored == 1 { "it" } else { "them" },
            )?;
        }
        if self.refused > 0 {
            writeln!(
                f,
                "  REFUSED: {} served live but not recorded: the leak gate or redaction refused \
                 {} (see the errors above); replay serves a 599 IMS_VCR.NOT_RECORDED in {} place \
                 (nothing, for a request that itself held the secret)",
                count(self.refused, "answer was", "answers were"),
                if self.refused == 1 { "it" } else { "them" },
                if self.refused == 1 { "its" } else { "their" },
            )?;
        }
        for miss in self.misses.iter().take(SUMMARY_SAMPLE) {
            writeln!(
                f,
                "  miss ({}x): {}",
                miss.count,
                miss.request.replace('\n', " | ")
            )?;
            if miss.exhausted {
                writeln!(
                    f,
                    "      every recorded answer of it was served (--sequence strict): it was asked for more often than recorded"
                )?;
            } else {
                for near in &miss.nearest {
                    writeln!(f, "      nearest: {near}")?;
                }
            }
            if let Some(recorded_in) = &miss.recorded_in {
                writeln!(f, "      recorded in: {recorded_in} (not in this session)")?;
            }
        }
        let unlisted = self.misses.len().saturating_sub(SUMMARY_SAMPLE) as u64 + self.untracked_misses;
        if unlisted > 0 {
            writeln!(
                f,
                "  ... and {unlisted} more missed requests (GET /__ims-vcr/misses lists up to 1000)"
            )?;
        }
        for unused in self.unused.iter().take(SUMMARY_SAMPLE) {
            writeln!(f, "  unused: {unused}")?;
        }
        if self.unused.len() > SUMMARY_SAMPLE {
            writeln!(
                f,
                "  ... and {} more unused recordings (GET /__ims-vcr/stats lists them all)",
                self.unused.len() - SUMMARY_SAMPLE
            )?;
        }
        // Failed sessions first, so none is hidden behind the sample's cap.
        let (failed, passed): (Vec<_>, Vec<_>) = self.sessions.iter().partition(|s| !s.ok);
        for session in failed.into_iter().chain(passed).take(SUMMARY_SAMPLE) {
            let attempts = match session.attempts {
                0 | 1 => String::new(),
                n => format!(" (in {n} attempts)"),
            };
            writeln!(
                f,
                "  session {}: {}, {}, {} recorded, {} unused{attempts}: {}",
                session.session,
                count(session.hits, "hit", "hits"),
                count(session.miss_count, "miss", "misses"),
                session.recorded,
                session.unused.len(),
                if session.ok { "ok" } else { "FAILED" }
            )?;
            for miss in session.misses.iter().take(3) {
                writeln!(f, "      miss: {miss}")?;
            }
            // What failed it under `--fail-on-unused`: the unused recordings of its last
            // attempt and of any failed one (the totals above count a recording unused only
            // when no attempt played it).
            if !session.ok {
                for unused in session.unused.iter().take(3) {
                    writeln!(f, "      unused: {unused}")?;
                }
            }
        }
        if self.sessions.len() > SUMMARY_SAMPLE {
            let failed = self.sessions.iter().filter(|s| !s.ok).count();
            writeln!(
                f,
                "  ... and {} more sessions ({failed} of all {} failed; GET /__ims-vcr/sessions lists them)",
                self.sessions.len() - SUMMARY_SAMPLE,
                self.sessions.len()
            )?;
        }
        Ok(())
    }
}

/// How many missed and unused requests the printed summary lists; the rest are counted.
const SUMMARY_SAMPLE: usize = 20;

/// Everything counted so far, read once.
pub(crate) struct Snapshot {
    /// The summary.
    pub(crate) summary: Summary,
    /// Injected faults.
    pub(crate) faults: u64,
    /// Every recorded request with its play counts.
    pub(crate) requests: Vec<TapeStats>,
}

impl Proxy {
    /// The counters, read once: `stats` and the exit summary both come from here.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let requests = self.tapes.stats();
        // Named as misses are, with the session: with a session per test, every test records
        // the same request lines.
        let unused = requests
            .iter()
            .filter(|t| t.unused())
            .map(|t| match &t.session {
                Some(session) => format!("{} | session: {session}", t.request),
                None => t.request.clone(),
            })
            .collect();
        Snapshot {
            summary: Summary {
                mode: Some(self.mode()),
                hits: self.metrics.total(Outcome::Hit),
                misses: self.misses(),
                untracked_misses: self.stats.untracked_misses.load(Ordering::Relaxed),
                unused,
                recorded: self.stats.recorded.load(Ordering::Relaxed),
                not_stored: self.stats.not_stored.load(Ordering::Relaxed),
                refused: self.stats.refused.load(Ordering::Relaxed),
                upstream_errors: self.metrics.total(Outcome::UpstreamError),
                sessions: self
                    .sessions
                    .all(&self.tapes, self.settings.fail_on_unused),
            },
            faults: self.stats.faults.load(Ordering::Relaxed),
            requests,
        }
    }

    /// `GET /__ims-vcr/sessions`: every named session with its counts and listener.
    pub(crate) fn session_list(&self) -> Vec<serde_json::Value> {
        self.sessions
            .all(&self.tapes, self.settings.fail_on_unused)
            .into_iter()
            .map(|v| {
                serde_json::json!({
                    "session": v.session,
                    "url": self.sessions.url(&v.session),
                    "hits": v.hits,
                    "misses": v.miss_count,
                    "recorded": v.recorded,
                    "unused": v.unused.len(),
                    "ok": v.ok,
                    "attempts": v.attempts,
                })
            })
            .collect()
    }

    /// `POST /__ims-vcr/sessions/NAME/stop`: the session's verdict; its listener is closed and
    /// its playback ends.
    pub(crate) fn stop_session(&self, session: &str) -> SessionVerdict {
        self.sessions
            .stop(session, &self.tapes, self.settings.fail_on_unused)
    }

    /// The summary of what this proxy did so far.
    pub(crate) fn summary(&self) -> Summary {
        self.snapshot().summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn miss(i: usize) -> Miss {
        Miss {
            request: format!("GET /v2/images/{i}"),
            session: None,
            count: 1,
            nearest: vec!["GET /v2/images/a".into()],
            recorded_in: None,
            diff: Vec::new(),
            exhausted: i == 1,
        }
    }

    #[test]
    fn the_printed_summary_lists_a_capped_sample_and_counts_the_rest() {
        let summary = Summary {
            misses: (0..1000).map(miss).collect(),
            untracked_misses: 5000,
            unused: (0..100_000).map(|i| format!("GET /v2/images/u{i}")).collect(),
            ..Summary::default()
        };
        let printed = summary.to_string();
        assert!(printed.starts_with("ims-vcr summary: 0 hits, 6000 misses,"), "{printed}");
        assert_eq!(printed.matches("  miss (").count(), SUMMARY_SAMPLE);
        assert_eq!(printed.matches("  unused: ").count(), SUMMARY_SAMPLE);
        assert!(printed.contains("... and 5980 more missed requests"), "{printed}");
        assert!(printed.contains("... and 99980 more unused recordings"), "{printed}");
        assert!(printed.len() < 8 * 1024, "{} bytes", printed.len());
        // A request whose recorded answers were all served says so, not its nearest lines.
        let exhausted = printed.split("  miss (").nth(2).unwrap();
        assert!(exhausted.contains("every recorded answer of it was served (--sequence strict)"), "{exhausted}");
        assert!(!exhausted.contains("nearest:"), "{exhausted}");
        assert!(printed.split("  miss (").nth(1).unwrap().contains("nearest: GET /v2/images/a"));
    }

    #[test]
    fn answers_the_store_failed_to_take_are_said_and_none_is_silent() {
        let lost = Summary { recorded: 10, not_stored: 2, ..Summary::default() };
        let printed = lost.to_string();
        assert!(printed.contains("NOT STORED: 2 answers were served live but not recorded"), "{printed}");
        assert!(!Summary::default().to_string().contains("NOT STORED"));
    }
}
