//! One source for what the proxy reports about itself: the counters behind `/__ims-vcr/stats`,
//! the exit summary (and the in-process [`Summary`]) and `--fail-on-*` verdicts. Prometheus
//! rendering of the per-route counters is `metrics.rs`.

use std::sync::atomic::Ordering;

use crate::model::count;
use crate::net::outcome::Outcome;
use crate::proxy::{Miss, Mode, Proxy};
use crate::replay::tape::TapeStats;

/// What a server did, returned by `ProxyServer::shutdown`: the CI verdict material.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Mode at shutdown.
    pub mode: Option<Mode>,
    /// Requests answered from recordings.
    pub hits: u64,
    /// Requests without a recording (with their nearest recordings and diff).
    pub misses: Vec<Miss>,
    /// Recorded requests never asked for.
    pub unused: Vec<String>,
    /// Answers recorded.
    pub recorded: u64,
    /// Requests answered 502 because the upstream failed.
    pub upstream_errors: u64,
}

impl Summary {
    /// Total misses (a request missed twice counts twice).
    pub fn miss_count(&self) -> u64 {
        self.misses.iter().map(|m| m.count).sum()
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
        for miss in &self.misses {
            writeln!(
                f,
                "  miss ({}x): {}",
                miss.count,
                miss.request.replace('\n', " | ")
            )?;
            for near in &miss.nearest {
                writeln!(f, "      nearest: {near}")?;
            }
        }
        for unused in &self.unused {
            writeln!(f, "  unused: {unused}")?;
        }
        Ok(())
    }
}

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
        let unused = requests
            .iter()
            .filter(|t| t.unused())
            .map(|t| t.request.clone())
            .collect();
        Snapshot {
            summary: Summary {
                mode: Some(self.mode()),
                hits: self.metrics.total(Outcome::Hit),
                misses: self.misses(),
                unused,
                recorded: self.stats.recorded.load(Ordering::Relaxed),
                upstream_errors: self.metrics.total(Outcome::UpstreamError),
            },
            faults: self.stats.faults.load(Ordering::Relaxed),
            requests,
        }
    }

    /// The summary of what this proxy did so far.
    pub(crate) fn summary(&self) -> Summary {
        self.snapshot().summary
    }
}
