//! Volatile values: text a test suite generates fresh on every run (`tf-acc-test-` plus random
//! characters, uuids in names). Matched by the regular expressions of `--volatile`, such text is
//! masked when requests are matched, so a replay with another random value still hits; and when
//! the replayed answer holds the value that was recorded, the live request's value is put in its
//! place (see `proxy::playback`).

use std::borrow::Cow;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a volatile value is replaced by for matching.
pub const MASK: &str = "{volatile}";

/// The volatile patterns of a set of match rules, compiled once.
#[derive(Clone, Default)]
pub struct Volatile {
    patterns: Vec<String>,
    compiled: Arc<[Regex]>,
}

impl Volatile {
    /// Compiles `patterns` given for a new recording (`--volatile`, the settings file); the
    /// error names the pattern that does not compile, or that can match the empty string, and
    /// why.
    pub fn new(patterns: Vec<String>) -> Result<Self, String> {
        Volatile::compiled(patterns, true)
    }

    /// [`Volatile::new`], but for patterns recordings were made with (a store's or a
    /// cassette's rules): one that can match the empty string, which an older ims-vcr took,
    /// keeps matching those recordings as they were keyed.
    fn compiled(patterns: Vec<String>, new: bool) -> Result<Self, String> {
        let compiled = patterns
            .iter()
            .map(|p| {
                if p.is_empty() {
                    return Err("--volatile \"\": an empty pattern matches everywhere".to_owned());
                }
                let regex =
                    Regex::new(p).map_err(|e| format!("--volatile {p:?} is not a valid regular expression: {e}"))?;
                // `.*`, `a*`, `(x)?`, `\b`: an empty match masks between characters, so requests
                // that differ key alike and a replay serves one request's answer to another.
                let empty_match = |text: &str| regex.find_iter(text).any(|m| m.is_empty());
                if new && ["", "a", "GET /v2/images?a=b c"].into_iter().any(empty_match) {
                    return Err(format!(
                        "--volatile {p:?} matches the empty string, so requests that differ would \
                         match each other: make it match at least one character (`x+`, not `x*`)"
                    ));
                }
                Ok(regex)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Volatile {
            patterns,
            compiled: compiled.into(),
        })
    }

    /// True when there is no pattern (matching is exact).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// `text` with every volatile value replaced by [`MASK`].
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for regex in self.compiled.iter() {
            if let Cow::Owned(masked) = regex.replace_all(&out, MASK) {
                out = Cow::Owned(masked);
            }
        }
        out
    }

    /// The volatile values in `text`, pattern by pattern, each in order of appearance.
    pub fn values(&self, text: &str) -> Vec<String> {
        self.compiled
            .iter()
            .flat_map(|regex| regex.find_iter(text).map(|m| m.as_str().to_owned()))
            .collect()
    }

    /// Pairs (recorded value, live value) where a recorded request's volatile values differ
    /// from a live request's (both as `values` gives them); values past the shorter list are
    /// left alone.
    pub fn substitutions(&self, recorded: &str, live: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (from, to) in self.values(recorded).into_iter().zip(self.values(live)) {
            if from != to && !pairs.iter().any(|(f, _)| *f == from) {
                pairs.push((from, to));
            }
        }
        pairs
    }
}

impl PartialEq for Volatile {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for Volatile {}

impl std::fmt::Debug for Volatile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.patterns.fmt(f)
    }
}

impl Serialize for Volatile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Volatile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let patterns = Vec::<String>::deserialize(deserializer)?;
        Volatile::compiled(patterns, false).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tf() -> Volatile {
        Volatile::new(vec!["tf-acc-test-[a-z0-9]{5}".into()]).unwrap()
    }

    #[test]
    fn volatile_values_are_masked_and_paired_with_the_live_ones() {
        let v = tf();
        assert_eq!(v.mask("name=tf-acc-test-abcde&x=1"), "name={volatile}&x=1");
        assert_eq!(v.mask("nothing here"), "nothing here");
        assert_eq!(
            v.substitutions("name=tf-acc-test-abcde", "name=tf-acc-test-zzzzz"),
            vec![("tf-acc-test-abcde".to_owned(), "tf-acc-test-zzzzz".to_owned())]
        );
        assert!(v.substitutions("tf-acc-test-abcde", "tf-acc-test-abcde").is_empty());
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_named() {
        let why = Volatile::new(vec!["tf-acc-(".into()]).unwrap_err();
        assert!(why.contains("--volatile \"tf-acc-(\""), "{why}");
        assert!(Volatile::new(vec![String::new()]).is_err());
        // A pattern that matches nothing at all would mask between every two characters.
        for empty in [".*", "a*", "(tf-)?", "x{0,3}", "^", "\\b"] {
            let why = Volatile::new(vec!["ok-[0-9]+".into(), empty.into()]).unwrap_err();
            assert!(why.contains(&format!("{empty:?}")) && why.contains("empty string"), "{why}");
        }
        assert!(Volatile::new(vec!["x+".into(), "tf-acc-test-[a-z0-9]*".into()]).is_ok());
        // Rules recordings were made with (by an ims-vcr that took such a pattern) still read,
        // so those recordings keep matching as they were keyed.
        let stored: Volatile = serde_json::from_str(r#"["a*"]"#).unwrap();
        assert_eq!(stored.patterns(), ["a*"]);
    }

    #[test]
    fn rules_with_patterns_round_trip_through_json_and_refuse_a_bad_one() {
        let v = tf();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"["tf-acc-test-[a-z0-9]{5}"]"#);
        assert_eq!(serde_json::from_str::<Volatile>(&json).unwrap(), v);
        assert!(serde_json::from_str::<Volatile>(r#"["("]"#).is_err());
    }
}
