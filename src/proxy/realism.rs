//! Realism on demand, zero by default: added latency (fixed, or the latency each recording
//! observed, scaled) and injected faults (503 answers, connection resets) for testing a client's
//! resilience, drawn deterministically from `--seed`.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Delay added before a replayed answer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Latency {
    /// Answer at once (the default).
    #[default]
    None,
    /// The same delay for every answer: `fixed:50ms`, `fixed:1s`.
    Fixed(Duration),
    /// The latency the upstream had when the answer was recorded, times a factor:
    /// `recorded`, `recorded*2`, `recorded*0.5`.
    Recorded(f64),
}

/// The longest delay ever added to an answer: `fixed:` durations above it are refused, and a
/// scaled recorded latency is capped at it (so no arithmetic on it can overflow).
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The largest `recorded*K` factor accepted.
pub const MAX_LATENCY_FACTOR: f64 = 1000.0;

impl FromStr for Latency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "--latency {s:?}: expected fixed:50ms, fixed:1s (at most {}s), recorded or recorded*K \
                 (K from 0 to {MAX_LATENCY_FACTOR})",
                MAX_DELAY.as_secs()
            )
        };
        if let Some(value) = s.strip_prefix("fixed:") {
            let (number, unit) = value.split_at(
                value
                    .find(|c: char| c.is_ascii_alphabetic())
                    .ok_or_else(bad)?,
            );
            let n: u64 = number.parse().map_err(|_| bad())?;
            let delay = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                _ => return Err(bad()),
            };
            return if delay <= MAX_DELAY {
                Ok(Latency::Fixed(delay))
            } else {
                Err(bad())
            };
        }
        match s.strip_prefix("recorded") {
            Some("") => Ok(Latency::Recorded(1.0)),
            Some(factor) => {
                let k: f64 = factor
                    .strip_prefix('*')
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?;
                // Also false for NaN and infinities.
                if (0.0..=MAX_LATENCY_FACTOR).contains(&k) {
                    Ok(Latency::Recorded(k))
                } else {
                    Err(bad())
                }
            }
            None => Err(bad()),
        }
    }
}

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An IMS-style `503 Service Unavailable` with `x-ims-vcr: fault`.
    Unavailable,
    /// The connection is closed without an answer.
    Reset,
}

/// A fault injected into a fraction of requests: `503:0.1`, `reset:0.05`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// Probability per request, 0 to 1.
    pub rate: f64,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("--fault {s:?}: expected 503:RATE or reset:RATE with RATE between 0 and 1");
        let (kind, rate) = s.split_once(':').ok_or_else(bad)?;
        let kind = match kind {
            "503" => FaultKind::Unavailable,
            "reset" => FaultKind::Reset,
            _ => return Err(bad()),
        };
        let rate: f64 = rate.parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(bad());
        }
        Ok(Fault { kind, rate })
    }
}

/// Latency and faults with their deterministic random source.
#[derive(Debug, Default)]
pub struct Realism {
    latency: Latency,
    faults: Vec<Fault>,
    seed: u64,
    /// Requests drawn for so far: request N always gets draw N, whatever the timing.
    drawn: AtomicU64,
}

impl Realism {
    /// Latency and faults seeded with `seed`.
    pub fn new(latency: Latency, faults: Vec<Fault>, seed: u64) -> Self {
        Realism {
            latency,
            faults,
            seed,
            drawn: AtomicU64::new(0),
        }
    }

    /// Whether this adds nothing: no latency, no faults.
    pub fn is_inert(&self) -> bool {
        matches!(self.latency, Latency::None) && self.faults.is_empty()
    }

    /// The fault for the next request, if any (each configured fault is tried in order).
    pub fn next_fault(&self) -> Option<FaultKind> {
        if self.faults.is_empty() {
            return None;
        }
        let n = self.drawn.fetch_add(1, Ordering::Relaxed);
        self.faults.iter().enumerate().find_map(|(i, fault)| {
            let draw =
                splitmix64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64) << 56);
            // Top 53 bits as a uniform float in [0, 1).
            let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
            (unit < fault.rate).then_some(fault.kind)
        })
    }

    /// The delay before serving an answer recorded with `recorded` latency, at most
    /// [`MAX_DELAY`]. Never panics, whatever the factor (the builder takes any [`Latency`], not
    /// only parsed ones) or the recorded latency (a hand-edited store can hold any).
    pub fn delay(&self, recorded: Duration) -> Duration {
        match self.latency {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d.min(MAX_DELAY),
            // `Duration::mul_f64` panics on overflow and on negative or NaN products.
            Latency::Recorded(k) if k.is_nan() || k <= 0.0 || recorded.is_zero() => {
                Duration::ZERO
            }
            Latency::Recorded(k) => {
                Duration::try_from_secs_f64(recorded.as_secs_f64() * k)
                    .unwrap_or(MAX_DELAY)
                    .min(MAX_DELAY)
            }
        }
    }
}

/// SplitMix64: a tiny, well-mixed, reproducible generator (no crate needed for this).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_and_fault_flags_parse_or_name_the_flag() {
        assert_eq!(
            "fixed:50ms".parse(),
            Ok(Latency::Fixed(Duration::from_millis(50)))
        );
        assert_eq!(
            "fixed:2s".parse(),
            Ok(Latency::Fixed(Duration::from_secs(2)))
        );
        assert_eq!("recorded".parse(), Ok(Latency::Recorded(1.0)));
        assert_eq!("recorded*2.5".parse(), Ok(Latency::Recorded(2.5)));
        for bad in ["fixed:50", "fixed:xms", "recorded*", "recorded*-1", "slow"] {
            assert!(
                bad.parse::<Latency>().unwrap_err().contains("--latency"),
                "{bad}"
            );
        }
        assert_eq!(
            "503:0.1".parse(),
            Ok(Fault {
                kind: FaultKind::Unavailable,
                rate: 0.1
            })
        );
        assert_eq!(
            "reset:1".parse(),
            Ok(Fault {
                kind: FaultKind::Reset,
                rate: 1.0
            })
        );
        for bad in ["503", "500:0.1", "reset:1.5", "reset:x"] {
            assert!(
                bad.parse::<Fault>().unwrap_err().contains("--fault"),
                "{bad}"
            );
        }
    }

    #[test]
    fn faults_are_deterministic_for_a_seed_and_near_their_rate() {
        let faults = vec!["503:0.2".parse().unwrap(), "reset:0.1".parse().unwrap()];
        let run = |seed| {
            let realism = Realism::new(Latency::None, faults.clone(), seed);
            (0..10_000)
                .map(|_| realism.next_fault())
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (run(7), run(7), run(8));
        assert_eq!(a, b, "same seed, same faults");
        assert_ne!(a, c, "another seed, other faults");
        let count = |kind| a.iter().filter(|f| **f == Some(kind)).count();
        // 503 on 20%; reset on 10% of the remaining 80% = 8%. Bounds are ±4.5 standard deviations.
        assert!(
            (1820..=2180).contains(&count(FaultKind::Unavailable)),
            "{}",
            count(FaultKind::Unavailable)
        );
        assert!(
            (680..=920).contains(&count(FaultKind::Reset)),
            "{}",
            count(FaultKind::Reset)
        );
    }

    #[test]
    fn recorded_latency_is_scaled() {
        let realism = Realism::new(Latency::Recorded(2.0), vec![], 0);
        assert_eq!(
            realism.delay(Duration::from_millis(30)),
            Duration::from_millis(60)
        );
        assert_eq!(
            Realism::default().delay(Duration::from_secs(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn latency_factors_and_durations_beyond_sense_are_refused_when_parsed() {
        for bad in [
            "recorded*1e300",
            "recorded*inf",
            "recorded*NaN",
            "recorded*1001",
            "fixed:3601s",
            "fixed:3600001ms",
            "fixed:18446744073709551615s",
        ] {
            let err = bad.parse::<Latency>().unwrap_err();
            assert!(err.contains("--latency"), "{bad}: {err}");
        }
        assert_eq!("recorded*1000".parse(), Ok(Latency::Recorded(1000.0)));
        assert_eq!("recorded*0".parse(), Ok(Latency::Recorded(0.0)));
        assert_eq!(
            "fixed:3600s".parse(),
            Ok(Latency::Fixed(Duration::from_secs(3600)))
        );
    }

    #[test]
    fn a_delay_never_overflows_and_never_exceeds_an_hour() {
        let hour = Duration::from_secs(3600);
        for (latency, recorded) in [
            (Latency::Recorded(1e300), Duration::from_millis(1)),
            (Latency::Recorded(f64::INFINITY), Duration::from_millis(1)),
            (Latency::Recorded(f64::NAN), Duration::from_millis(1)),
            (Latency::Recorded(-1.0), Duration::from_millis(1)),
            (Latency::Recorded(1000.0), Duration::from_millis(u64::MAX)),
            (Latency::Recorded(1.0), Duration::MAX),
            (Latency::Fixed(Duration::MAX), Duration::ZERO),
        ] {
            let delay = Realism::new(latency, vec![], 0).delay(recorded);
            assert!(delay <= hour, "{latency:?} x {recorded:?}: {delay:?}");
        }
        assert_eq!(
            Realism::new(Latency::Recorded(1e300), vec![], 0).delay(Duration::from_millis(1)),
            hour
        );
    }
}
