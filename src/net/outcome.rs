//! What became of a request, in one table: the value of the `x-ims-vcr` header on every answer
//! the proxy gives, the label of the metrics, and the per-outcome counters. Every outcome is a
//! variant, so none can be misspelt, dropped or unknown.

use hyper::header::{HeaderName, HeaderValue};

/// Header on every answer the proxy gives, saying where it came from (see [`Outcome`]).
pub const OUTCOME_HEADER: &str = "x-ims-vcr";
/// [`OUTCOME_HEADER`] parsed at compile time: inserting by `&str` validates the name each time,
/// on every replayed request.
pub const OUTCOME_HEADER_NAME: HeaderName = HeaderName::from_static(OUTCOME_HEADER);

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Replayed from a recording.
    Hit,
    /// No recording matched: answered `599` with the nearest recordings.
    Miss,
    /// Forwarded live, and stored.
    Recorded,
    /// Forwarded live, not stored (passthrough).
    Forwarded,
    /// The upstream failed: answered `502`/`504` naming the failure.
    UpstreamError,
    /// An injected fault (`--fault`).
    Fault,
    /// The proxy refused the request (bad request, body too large, unreadable recording).
    Error,
    /// An answer of the control API.
    Control,
}

impl Outcome {
    /// Every outcome, in [`Outcome::index`] order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Recorded,
        Outcome::Forwarded,
        Outcome::UpstreamError,
        Outcome::Fault,
        Outcome::Error,
        Outcome::Control,
    ];

    /// The `x-ims-vcr` header value and metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Recorded => "recorded",
            Outcome::Forwarded => "forwarded",
            Outcome::UpstreamError => "upstream-error",
            Outcome::Fault => "fault",
            Outcome::Error => "error",
            Outcome::Control => "control",
        }
    }

    /// Position in [`Outcome::ALL`], for per-outcome counters.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The header value, without validating it again.
    pub const fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_sits_at_its_index_and_has_a_distinct_valid_header_value() {
        let mut seen = std::collections::HashSet::new();
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), i);
            assert!(seen.insert(outcome.as_str()));
            assert_eq!(outcome.header_value(), outcome.as_str());
        }
    }
}
