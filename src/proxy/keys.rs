//! Request keys, and a per-thread memo of them: a replaying client asks for the same few
//! requests again and again, and building a key (the canonical form: query parsed, sorted and
//! re-encoded; then its SHA-256, or a look-up of the canonical form in the digest memo) is the
//! largest per-request cost of a replayed request after hyper's own.
//!
//! The memo is exact: it is used only when the key is a function of the method, the path, the
//! query and the session, under the proxy's rules, and nothing else. The canonical form reads
//! a header only for [`MatchRules::match_headers`], for the conditional headers and
//! `Range` ([`SELECTING`]) and for a body's `content-type`, and the body only when there is one, so
//! a request with a body or a conditional header, or any request under rules that match
//! headers, is keyed in full every time. Entries are told apart by proxy too (each
//! [`Keys`] has its own id), as two proxies in one process (tests, a library user) may have
//! different rules.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::http::request::Parts;

use crate::model::key::{MatchRules, RequestKey, SELECTING, canonical_form};

/// Entries kept per thread before the memo starts over: a client asking for ever new requests
/// costs a little memory (a few hundred KB per thread), never more.
const CAPACITY: usize = 2048;
/// Longest path, query and session (together) that is memoised: a longer one is keyed in full,
/// so one entry stays small whatever the client sends.
const MAX_MEMOISED: usize = 512;

/// Tells the memo entries of one proxy from another's.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// One proxy's keys: its rules decide whether the memo may be used at all.
#[derive(Debug)]
pub(crate) struct Keys {
    /// Unique in the process, so a thread's memo never serves one proxy another's key.
    id: u64,
    /// False when the rules make a key depend on request headers.
    memoisable: bool,
}

/// A thread's memo: entries by [`Keys::id`], method, path, query and session, encoded in
/// `scratch` (reused, so a look-up allocates nothing).
#[derive(Default)]
struct Memo {
    scratch: Vec<u8>,
    keys: HashMap<Box<[u8]>, Arc<RequestKey>, foldhash::fast::RandomState>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

impl Keys {
    pub(crate) fn new(rules: &MatchRules) -> Keys {
        Keys {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            memoisable: rules.match_headers.is_empty(),
        }
    }

    /// The request's key under `rules` (the rules this was made with), in `session`.
    pub(crate) fn key(
        &self,
        rules: &MatchRules,
        parts: &Parts,
        body: &[u8],
        session: Option<&str>,
    ) -> Arc<RequestKey> {
        let (path, query) = (parts.uri.path(), parts.uri.query());
        let size = path.len() + query.map_or(0, str::len) + session.map_or(0, str::len);
        let selecting = conditional(parts);
        if !self.memoisable || !body.is_empty() || size > MAX_MEMOISED || selecting {
            return Arc::new(computed(rules, parts, body, session, selecting));
        }
        MEMO.with_borrow_mut(|memo| {
            let Memo { scratch, keys } = memo;
            scratch.clear();
            scratch.extend_from_slice(&self.id.to_le_bytes());
            // Each part with its length first, so no two requests share an encoding.
            for part in [Some(parts.method.as_str()), Some(path), query, session] {
                match part {
                    Some(part) => {
                        scratch.push(1);
                        scratch.extend_from_slice(&(part.len() as u64).to_le_bytes());
                        scratch.extend_from_slice(part.as_bytes());
                    }
                    None => scratch.push(0),
                }
            }
            if let Some(key) = keys.get(scratch.as_slice()) {
                return key.clone();
            }
            let key = Arc::new(computed(rules, parts, body, session, false));
            if keys.len() >= CAPACITY {
                keys.clear();
            }
            keys.insert(scratch.as_slice().into(), key.clone());
            key
        })
    }
}

/// Whether the request carries a header of [`SELECTING`] (its key depends on it).
fn conditional(parts: &Parts) -> bool {
    use hyper::header::{
        IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
    };
    debug_assert_eq!(SELECTING.len(), 6);
    // Compared name by name: a request has a few headers, and comparing two standard names is
    // a tag check, where each `contains_key` would hash the name.
    parts.headers.keys().any(|name| {
        [RANGE, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_MATCH, IF_UNMODIFIED_SINCE, IF_RANGE].contains(name)
    })
}

/// The key in full: canonical form (the headers [`MatchRules::match_headers`] names, and the
/// body's `content-type`, read from the request), then its digest. `selecting` is
/// [`conditional`]`(parts)`, which the caller has read already: the key asks for each of
/// [`SELECTING`]'s six headers, and a request that has none of them (almost every one) answers
/// those without hashing each name into its header map.
fn computed(
    rules: &MatchRules,
    parts: &Parts,
    body: &[u8],
    session: Option<&str>,
    selecting: bool,
) -> RequestKey {
    let canonical = canonical_form(
        rules,
        (parts.method.as_str(), parts.uri.path(), parts.uri.query()),
        |name| {
            if !selecting && SELECTING.contains(&name) {
                return Vec::new();
            }
            parts
                .headers
                .get_all(name)
                .iter()
                // As a stored request's header reads (`headers::to_pairs`): a value that is
                // not visible ASCII (`René`, a Latin-1 byte) keys as lossy UTF-8, not as absent.
                .map(|v| match v.to_str() {
                    Ok(text) => Cow::Borrowed(text),
                    Err(_) => String::from_utf8_lossy(v.as_bytes()),
                })
                .collect::<Vec<_>>()
        },
        body,
    );
    RequestKey::live(canonical, session)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::computed`] with `selecting` read from the request, as [`Keys::key`] reads it.
    fn computed(rules: &MatchRules, parts: &Parts, body: &[u8], session: Option<&str>) -> RequestKey {
        super::computed(rules, parts, body, session, conditional(parts))
    }

    fn parts(method: &str, target: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = hyper::Request::builder().method(method).uri(target);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn rules_matching(header: &str) -> MatchRules {
        MatchRules {
            match_headers: vec![header.into()],
            ..MatchRules::default()
        }
    }

    #[test]
    fn a_matched_value_beyond_ascii_keys_as_the_stored_request_reads_it() {
        let rules = rules_matching("x-name");
        for value in [&b"Ren\xc3\xa9"[..], b"Ren\xe9", b"plain"] {
            let mut live = parts("GET", "/v2/images", &[]);
            let header = hyper::header::HeaderValue::from_bytes(value).unwrap();
            live.headers.insert("x-name", header);
            let key = computed(&rules, &live, b"", None);
            // A stored request's headers are text read as lossy UTF-8 (`headers::to_pairs`).
            let stored = crate::model::headers::to_pairs(&live.headers, |_| true);
            let header = |name: &str| {
                (stored.iter())
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
            };
            let expected = RequestKey::new(&rules, "GET", "/v2/images", None, header, b"");
            assert_eq!(key, expected, "{}", String::from_utf8_lossy(value));
            assert!(!key.canonical().ends_with("x-name: "), "{}", key.canonical());
        }
    }

    /// `computed` answers the [`SELECTING`] headers itself when `conditional` finds none of
    /// them: every name of the one list is one the other finds, and with or without such a
    /// header (named by a rule too, in another letter case) the key is the one its stored form
    /// gets.
    #[test]
    fn a_live_key_reads_the_selecting_headers_as_the_stored_request_does() {
        for name in SELECTING {
            assert!(conditional(&parts("GET", "/", &[(name, "x")])), "{name}");
        }
        assert!(!conditional(&parts("GET", "/", &[("accept", "*/*"), ("x-range", "1")])));
        let stored_key = |rules: &MatchRules, live: &Parts| {
            let stored = crate::model::headers::to_pairs(&live.headers, |_| true);
            let header = |name: &str| {
                (stored.iter())
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
            };
            RequestKey::new(rules, "GET", "/v2/images", None, header, b"")
        };
        for rules in [MatchRules::default(), rules_matching("If-None-Match")] {
            let plain = parts("GET", "/v2/images", &[("accept", "application/json")]);
            assert_eq!(computed(&rules, &plain, b"", None), stored_key(&rules, &plain));
            for name in SELECTING {
                let live = parts("GET", "/v2/images", &[("accept", "application/json"), (name, "\"v1\"")]);
                let key = computed(&rules, &live, b"", None);
                assert_eq!(key, stored_key(&rules, &live), "{name}");
                assert_ne!(key, computed(&rules, &plain, b"", None), "{name}");
            }
        }
    }

    #[test]
    fn a_repeated_request_gets_the_same_key_as_computed_and_from_the_memo() {
        let rules = MatchRules {
            ignore_query: vec!["marker".into()],
            ..MatchRules::default()
        };
        let keys = Keys::new(&rules);
        for (method, target, session) in [
            ("GET", "/v2/images/x", None),
            ("GET", "/v2/images?limit=2&marker=a&owner=o", Some("s1")),
            ("GET", "/v2/images?limit=2&marker=b&owner=o", Some("s1")),
            ("get", "/v2/images?", None),
            ("GET", "/v2/images", Some("s2")),
            ("HEAD", "/v2/images/x", None),
        ] {
            let parts = parts(method, target, &[]);
            let first = keys.key(&rules, &parts, b"", session);
            let again = keys.key(&rules, &parts, b"", session);
            assert!(Arc::ptr_eq(&first, &again), "{method} {target}: memoised");
            assert_eq!(*again, computed(&rules, &parts, b"", session), "{method} {target}");
        }
    }

    #[test]
    fn a_key_that_depends_on_a_header_or_a_body_is_never_memoised() {
        // Matched headers: two requests differing only in the header have different keys, and
        // neither is taken from the memo.
        let rules = rules_matching("x-project-id");
        let keys = Keys::new(&rules);
        let p1 = parts("GET", "/v2/images", &[("x-project-id", "p1")]);
        let p2 = parts("GET", "/v2/images", &[("x-project-id", "p2")]);
        let (a, b) = (keys.key(&rules, &p1, b"", None), keys.key(&rules, &p2, b"", None));
        assert_ne!(a.digest(), b.digest());
        assert_eq!(*b, computed(&rules, &p2, b"", None));
        assert!(!Arc::ptr_eq(&a, &keys.key(&rules, &p1, b"", None)));
        // A body (whose `content-type` can change its canonical form too) is keyed in full.
        let rules = MatchRules::default();
        let keys = Keys::new(&rules);
        let post = parts("POST", "/v2/images", &[("content-type", "application/json")]);
        let first = keys.key(&rules, &post, br#"{"name":"a"}"#, None);
        let other = keys.key(&rules, &post, br#"{"name":"b"}"#, None);
        assert_ne!(first.digest(), other.digest());
        assert!(!Arc::ptr_eq(&first, &keys.key(&rules, &post, br#"{"name":"a"}"#, None)));
        // Without the body, the same request line is another key.
        assert_ne!(keys.key(&rules, &post, b"", None).digest(), first.digest());
        // A conditional request keys by its validator, apart from the plain one, whichever
        // of the two the memo saw first.
        let plain = parts("GET", "/v2/images/x", &[]);
        let plain_key = keys.key(&rules, &plain, b"", None);
        for (name, value) in [
            ("if-none-match", "\"v1\""),
            ("if-modified-since", "Tue, 01 Dec 2026 00:00:00 GMT"),
            ("if-match", "*"),
            ("if-unmodified-since", "Tue, 01 Dec 2026 00:00:00 GMT"),
            ("if-range", "\"v1\""),
            ("range", "bytes=0-99"),
        ] {
            let conditional = parts("GET", "/v2/images/x", &[(name, value)]);
            let key = keys.key(&rules, &conditional, b"", None);
            assert_ne!(key.digest(), plain_key.digest(), "{name}");
            assert_eq!(*key, computed(&rules, &conditional, b"", None), "{name}");
            assert!(key.canonical().ends_with(&format!("\n{name}: {value}")), "{name}");
            let other = parts("GET", "/v2/images/x", &[(name, "\"v2\"")]);
            assert_ne!(keys.key(&rules, &other, b"", None).digest(), key.digest(), "{name}");
        }
        assert!(Arc::ptr_eq(&plain_key, &keys.key(&rules, &plain, b"", None)));
    }

    #[test]
    fn proxies_with_other_rules_never_share_an_entry() {
        let ignoring = MatchRules {
            ignore_query: vec!["marker".into()],
            ..MatchRules::default()
        };
        let plain = MatchRules::default();
        let (a, b) = (Keys::new(&ignoring), Keys::new(&plain));
        let request = parts("GET", "/v2/images?marker=1", &[]);
        let ignored = a.key(&ignoring, &request, b"", None);
        let kept = b.key(&plain, &request, b"", None);
        assert_ne!(ignored.digest(), kept.digest());
        assert_eq!(*kept, computed(&plain, &request, b"", None));
    }

    #[test]
    fn a_session_or_no_session_is_part_of_the_entry() {
        let rules = MatchRules::default();
        let keys = Keys::new(&rules);
        let request = parts("GET", "/v2/images", &[]);
        let none = keys.key(&rules, &request, b"", None);
        let named = keys.key(&rules, &request, b"", Some("a"));
        assert_eq!(named.session(), Some("a"));
        assert_ne!(none.digest(), named.digest());
        assert_eq!(*keys.key(&rules, &request, b"", None), *none);
    }

    #[test]
    fn a_long_target_is_keyed_in_full_and_the_memo_stays_bounded() {
        let rules = MatchRules::default();
        let keys = Keys::new(&rules);
        let long = format!("/v2/images/{}", "a".repeat(MAX_MEMOISED));
        let request = parts("GET", &long, &[]);
        let first = keys.key(&rules, &request, b"", None);
        assert!(!Arc::ptr_eq(&first, &keys.key(&rules, &request, b"", None)));
        for n in 0..CAPACITY + 10 {
            keys.key(&rules, &parts("GET", &format!("/v2/images/{n}"), &[]), b"", None);
        }
        MEMO.with_borrow(|memo| assert!(memo.keys.len() <= CAPACITY));
    }
}
