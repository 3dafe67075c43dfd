//! Prometheus metrics for `GET /__ims-vcr/metrics`: requests by route template (never by image
//! id, which would explode cardinality) and outcome, upstream errors, redactions, and latency
//! histograms for replayed answers and upstream exchanges. Lock-free: atomics only.

use std::fmt::Write as _;
use crate::net::outcome::Outcome;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Route templates of the IMS Glance-v2 surface; anything else is `other`.
const ROUTES: [&str; 10] = [
    "/",
    "/v2",
    "/v2/schemas/image",
    "/v2/schemas/images",
    "/v2/images",
    "/v2/images/{image_id}",
    "/v2/images/{image_id}/file",
    "/v2/images/{image_id}/members",
    "/v2/images/{image_id}/tags/{tag}",
    "other",
];

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The route template of a request path.
#[cfg(any(test, feature = "internals"))]
pub fn route(path: &str) -> &'static str {
    ROUTES[route_index(path)]
}

/// Index in [`ROUTES`] of a path's template (trailing slashes ignored; more than six segments
/// is "other"). Runs on every request, so it compares prefixes and finds slashes with `memchr`
/// instead of splitting the path or counting its bytes one by one.
fn route_index(path: &str) -> usize {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return 0;
    }
    let rest = match path.strip_prefix("/v2") {
        Some("") => return 1,
        Some(rest) => rest,
        None => return 9,
    };
    match rest {
        "/schemas/image" => return 2,
        "/schemas/images" => return 3,
        "/images" => return 4,
        _ => {}
    }
    let Some(image) = rest.strip_prefix("/images/") else {
        return 9;
    };
    // `/v2/images/` holds three of the six slashes a known template may have.
    let Some(end) = memchr::memchr(b'/', image.as_bytes()) else {
        return 5;
    };
    let tail = &image[end + 1..];
    if memchr::memchr_iter(b'/', tail.as_bytes()).count() > 2 {
        return 9;
    }
    match tail {
        "file" => 6,
        "members" => 7,
        _ if tail.starts_with("members/") => 7,
        _ => match tail.strip_prefix("tags/") {
            Some(tag) if !tag.contains('/') => 8,
            _ => 9,
        },
    }
}

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// All counters of one proxy.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; Outcome::ALL.len()]; ROUTES.len()],
    redactions: AtomicU64,
    replay: Histogram,
    upstream: Histogram,
}

impl Metrics {
    /// Counts an answered request; `elapsed` feeds the replay histogram for hits.
    pub fn request(&self, path: &str, outcome: Outcome, elapsed: Duration) {
        let r = route_index(path);
        self.requests[r][outcome.index()].fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Hit {
            self.replay.observe(elapsed);
        }
    }

    /// Records one upstream exchange's latency.
    pub fn upstream(&self, elapsed: Duration) {
        self.upstream.observe(elapsed);
    }

    /// Counts a redacted interaction.
    pub fn redaction(&self) {
        self.redactions.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered with `outcome` (an `x-ims-vcr` value), all routes.
    pub fn total(&self, outcome: Outcome) -> u64 {
        let o = outcome.index();
        self.requests
            .iter()
            .map(|row| row[o].load(Ordering::Relaxed))
            .sum()
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP ims_vcr_requests_total Requests answered, by route template and outcome.\n",
        );
        out.push_str("# TYPE ims_vcr_requests_total counter\n");
        for (route, row) in ROUTES.iter().zip(&self.requests) {
            for (outcome, count) in Outcome::ALL.iter().zip(row) {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "ims_vcr_requests_total{{route=\"{route}\",outcome=\"{outcome}\"}} {n}"
                    );
                }
            }
        }
        let totals = [
            (
                "ims_vcr_hits_total",
                "Requests answered from a recording.",
                self.total(Outcome::Hit),
            ),
            (
                "ims_vcr_misses_total",
                "Requests with no recording (answered 599).",
                self.total(Outcome::Miss),
            ),
            (
                "ims_vcr_recorded_total",
                "Answers forwarded and recorded.",
                self.total(Outcome::Recorded),
            ),
            (
                "ims_vcr_upstream_errors_total",
                "Upstream exchanges that failed (answered 502).",
                self.total(Outcome::UpstreamError),
            ),
            (
                "ims_vcr_redactions_total",
                "Interactions redacted before being stored.",
                self.redactions.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in totals {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        self.replay.render(
            &mut out,
            "ims_vcr_replay_duration_seconds",
            "Time to answer a replayed request.",
        );
        self.upstream.render(
            &mut out,
            "ims_vcr_upstream_duration_seconds",
            "Time for one upstream exchange.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_not_ids() {
        let cases = [
            ("/", "/"),
            ("/v2/", "/v2"),
            ("/v2/images", "/v2/images"),
            (
                "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52",
                "/v2/images/{image_id}",
            ),
            ("/v2/images/x/members/y", "/v2/images/{image_id}/members"),
            ("/v2/images/x/tags/t", "/v2/images/{image_id}/tags/{tag}"),
            ("/v2/schemas/image", "/v2/schemas/image"),
            ("/v3/whatever", "other"),
        ];
        for (path, template) in cases {
            assert_eq!(route(path), template, "{path}");
        }
    }

    #[test]
    fn route_index_agrees_with_matching_split_segments() {
        // The straightforward version, kept as the oracle.
        fn by_segments(path: &str) -> usize {
            let mut segments = [""; 6];
            let mut count = 0;
            for segment in path.trim_end_matches('/').split('/').skip(1) {
                if count == segments.len() {
                    return 9;
                }
                segments[count] = segment;
                count += 1;
            }
            match &segments[..count] {
                [] => 0,
                ["v2"] => 1,
                ["v2", "schemas", "image"] => 2,
                ["v2", "schemas", "images"] => 3,
                ["v2", "images"] => 4,
                ["v2", "images", _] => 5,
                ["v2", "images", _, "file"] => 6,
                ["v2", "images", _, "members", ..] => 7,
                ["v2", "images", _, "tags", _] => 8,
                _ => 9,
            }
        }
        let parts = [
            "", "v2", "v3", "images", "schemas", "image", "x", "file", "members", "tags", "t",
        ];
        // Paths of up to six segments along the IMS routes, and short ones of any shape.
        let (mut level, mut paths) = (vec![String::new()], vec![String::new()]);
        for depth in 0..6 {
            level = level
                .iter()
                .flat_map(|p| parts.iter().map(move |s| format!("{p}/{s}")))
                .filter(|p| {
                    p.starts_with("/v2/images/x")
                        || (p.starts_with("/v2/schemas/") && depth < 4)
                        || p.len() < 10
                })
                .collect();
            paths.extend(level.iter().cloned());
        }
        let longer = [
            "/v2/images/x/members/a/b",
            "/v2/images/x/members/a/b/c",
            "//",
            "/v2x",
        ];
        paths.extend(longer.map(String::from));
        for path in &paths {
            for path in [path.clone(), format!("{path}/"), format!("{path}//")] {
                assert_eq!(route_index(&path), by_segments(&path), "{path:?}");
            }
        }
        assert!(paths.len() > 1000, "{}", paths.len());
    }

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.request("/v2/images/a", Outcome::Hit, Duration::from_micros(200));
        metrics.request("/v2/images/b", Outcome::Hit, Duration::from_millis(30));
        metrics.request("/v2/images/c", Outcome::Miss, Duration::from_millis(1));
        let text = metrics.render();
        assert!(
            text.contains(
                "ims_vcr_requests_total{route=\"/v2/images/{image_id}\",outcome=\"hit\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("ims_vcr_replay_duration_seconds_bucket{le=\"0.00025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ims_vcr_replay_duration_seconds_bucket{le=\"0.05\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ims_vcr_replay_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("ims_vcr_misses_total 1"), "{text}");
    }
}
