//! What a miss is told: the recorded requests nearest to it (cheaply, even among 100,000), and a
//! machine-readable list of how it differs from the nearest one.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::credentials;
use crate::model::interaction::{RecordedRequest, body_bytes};
use crate::model::key::{MatchRules, RequestKey, hex};
use crate::replay::tape::{Tape, TapeIndex, Tapes};

/// Where a missed request stands among the recordings: the nearest ones, and the other
/// sessions that recorded its request line.
#[derive(Debug, Default)]
pub struct Neighbours {
    /// Up to `n` recorded requests of its session closest to it: its own (a tape played to its
    /// end) first, then same method, then most leading path segments shared, then edit
    /// distance, then the line itself (so the answer is the same every time). Edit distance is
    /// the costly part, so with many recordings it is computed only for the
    /// [`DISTANCE_CANDIDATES`] best by method, shared segments and characters shared at both
    /// ends (a line one edit away shares all but one).
    pub nearest: Vec<Arc<Tape>>,
    /// The other sessions than the request's holding a recording of its request line, sorted
    /// (the default session as `None`, first): a miss in the wrong session (a typo in its
    /// name, a missing header) is told where its request was recorded, since `nearest` looks
    /// only in its own.
    pub elsewhere: Vec<Option<String>>,
}

impl Tapes {
    /// What a miss of `key` is told ([`Neighbours`]: up to `n` nearest recordings, and, when
    /// `elsewhere`, the other sessions holding its request line), found on a blocking thread
    /// and one miss at a time. Among 100,000 recordings a search takes tens of milliseconds:
    /// on the runtime's threads, a storm of misses (a suite's unrecorded tests) would hold up
    /// every request that is recorded; here they wait for each other instead.
    pub async fn neighbours(&self, key: &RequestKey, n: usize, elsewhere: bool) -> Neighbours {
        let _turn = self.searching.lock().await;
        // Merges an index built behind serving, if it was (a miss has waited for it).
        drop(self.read());
        let (index, key) = (self.tapes.clone(), key.clone());
        tokio::task::spawn_blocking(move || Neighbours {
            nearest: nearest_in(&index, &key, n),
            elsewhere: match elsewhere {
                true => other_sessions_in(&index, &key),
                false => Vec::new(),
            },
        })
        .await
        // A search that panicked (or a runtime shutting down) tells the miss nothing more.
        .unwrap_or_default()
    }

    /// [`Neighbours::nearest`], found on this thread.
    #[cfg(test)]
    pub fn nearest(&self, key: &RequestKey, n: usize) -> Vec<Arc<Tape>> {
        drop(self.read());
        nearest_in(&self.tapes, key, n)
    }
}

/// [`Neighbours::nearest`] in `index`.
fn nearest_in(index: &RwLock<TapeIndex>, key: &RequestKey, n: usize) -> Vec<Arc<Tape>> {
    let wanted = key.request_line();
    let (method, path) = split_line(wanted);
    // Tapes with the same line (same path, other bodies) are told apart by digest, so the
    // order never depends on the map's.
    // Only the request's own session: another session's recordings are not its to play.
    // Ranked under the read lock, on a blocking thread (see `Tapes::neighbours`): only the
    // nearest are cloned out of the index, not every entry.
    let index = read(index);
    let mut cheap: Vec<(Cheap, &str, &[u8; 32], &Arc<Tape>)> = index
        .iter()
        .filter(|(_, t)| t.session() == key.session())
        .map(|(digest, tape)| {
            let (m, p) = split_line(tape.line());
            let shared = shared_segments(path, p);
            let key = (
                digest != key.digest(),
                m != method,
                Reverse(shared),
                Reverse(ends_shared(wanted, tape.line())),
            );
            (key, tape.line(), digest, tape)
        })
        .collect();
    let keep = DISTANCE_CANDIDATES.max(n);
    if cheap.len() > keep {
        cheap.select_nth_unstable_by(keep - 1, |a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        cheap.truncate(keep);
    }
    let mut scored: Vec<(Closeness, &[u8; 32], &Arc<Tape>)> = cheap
        .into_iter()
        .map(|((not_it, other, shared, _), line, digest, tape)| {
            ((not_it, other, shared, distance(wanted, line), line), digest, tape)
        })
        .collect();
    scored.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    scored
        .into_iter()
        .take(n)
        .map(|(_, _, tape)| Arc::clone(tape))
        .collect()
}

/// [`Neighbours::elsewhere`] in `index`.
fn other_sessions_in(index: &RwLock<TapeIndex>, key: &RequestKey) -> Vec<Option<String>> {
    let line = key.request_line();
    let mut sessions: Vec<Option<String>> = read(index)
        .values()
        .filter(|t| t.line() == line && t.session() != key.session())
        .map(|t| t.session().map(str::to_owned))
        .collect();
    sessions.sort();
    sessions.dedup();
    sessions
}

fn read(index: &RwLock<TapeIndex>) -> std::sync::RwLockReadGuard<'_, TapeIndex> {
    index.read().expect("no code panics while holding the tapes lock")
}

/// How many recorded requests a miss's search ([`Neighbours::nearest`]) computes an edit distance for.
pub const DISTANCE_CANDIDATES: usize = 256;

/// Cheap sort key for "nearest": another request than the one missed (a tape of the very
/// request comes first: `--sequence strict` played it to its end), other method, fewer shared
/// path segments, fewer characters shared at the two ends.
type Cheap = (bool, bool, Reverse<usize>, Reverse<usize>);

/// Sort key for "nearest": another request, other method, fewer shared path segments, edit
/// distance, line.
type Closeness<'a> = (bool, bool, Reverse<usize>, usize, &'a str);

/// A machine-readable list of how `request` differs from the recorded `tape`: one object per
/// differing part (`method`, `path`, `query` parameter, matched `header`, `body`).
pub fn diff(rules: &MatchRules, request: &RecordedRequest, tape: &Tape) -> Vec<Value> {
    let recorded = match tape.loaded() {
        Ok(loaded) => &loaded.request,
        Err(e) => return vec![json!({"part": "unreadable", "error": e})],
    };
    let mut out = Vec::new();
    // Case counts, as in the key (a `get` is not a `GET`).
    if request.method != recorded.method {
        out.push(json!({"part": "method", "recorded": recorded.method, "got": request.method}));
    }
    if request.path != recorded.path {
        // As the key sees them: credential matrix parameters masked, so they neither differ nor
        // show.
        let (recorded, got) = (
            credentials::shown_path(&recorded.path),
            credentials::shown_path(&request.path),
        );
        if recorded != got {
            out.push(json!({"part": "path", "recorded": recorded, "got": got}));
        }
    }
    // Values in the order sent (a repeated name's values are positional, as in the key), and
    // credentials as the key sees them: masked, so they neither differ nor show.
    let params = |q: &Option<String>| -> HashMap<String, Vec<String>> {
        let query = crate::model::params::masked_query(q.as_deref().unwrap_or(""));
        // Bytes that are not UTF-8 shown percent-encoded, so `%FE` and `%FF` differ here too.
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes).unwrap_or_else(|e| form_urlencoded::byte_serialize(e.as_bytes()).collect())
        };
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in crate::model::key::query_pairs(&query) {
            let k = text(k);
            if !rules.ignore_query.contains(&k) {
                map.entry(k).or_default().push(text(v));
            }
        }
        map
    };
    let (want, got) = (params(&recorded.query), params(&request.query));
    let mut names: Vec<&String> = want.keys().chain(got.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if want.get(name) != got.get(name) {
            out.push(json!({"part": "query", "name": name, "recorded": want.get(name), "got": got.get(name)}));
        }
    }
    // The headers the key reads: those the rules match on, and the conditional ones and
    // `Range` whenever a request carries them (`SELECTING`), so a miss caused by an
    // `If-None-Match` says so.
    let selecting = crate::model::key::SELECTING
        .iter()
        .filter(|s| !rules.match_headers.iter().any(|m| m.eq_ignore_ascii_case(s)));
    for name in rules.match_headers.iter().map(String::as_str).chain(selecting.copied()) {
        // A credential's value is never shown (the rules refuse such headers; this holds anyway).
        let secret = crate::model::headers::is_credential(name) || credentials::is_credential_name(name);
        let values = |r: &RecordedRequest| -> Vec<String> {
            r.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| match secret {
                    true => credentials::PLACEHOLDER.to_owned(),
                    // As the key sees it: credentials in a URL or parameter it holds masked.
                    false => crate::model::params::mask_header_value(v).map_or(v.clone(), |m| m.0),
                })
                .collect()
        };
        if values(recorded) != values(request) {
            out.push(json!({"part": "header", "name": name, "recorded": values(recorded), "got": values(request)}));
        }
    }
    // The body as the key matches it (decoded, JSON with its keys sorted, credentials and
    // volatile values masked): its SHA-256 is the one the request's canonical form shows, and
    // for JSON the fields that differ are named.
    let matched = |r: &RecordedRequest| {
        let body = body_bytes(&r.body).unwrap_or_default();
        crate::model::key::body_as_matched(rules, &body, |name| {
            r.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        })
    };
    let (was, now) = (matched(recorded), matched(request));
    if was != now {
        let digest = |b: &[u8]| if b.is_empty() { String::new() } else { hex(&Sha256::digest(b)) };
        let mut part = json!({"part": "body", "recorded_sha256": digest(&was), "got_sha256": digest(&now)});
        if let (Ok(was), Ok(now)) = (serde_json::from_slice::<Value>(&was), serde_json::from_slice::<Value>(&now)) {
            let mut fields = Vec::new();
            json_differences(&was, &now, &mut String::new(), &mut fields);
            part["fields"] = Value::Array(fields);
        }
        out.push(part);
    }
    out
}

/// How many fields of a JSON body a miss's diff names.
const DIFFERING_FIELDS: usize = 20;

/// The fields where two JSON values differ, by JSON pointer (`/auth/identity/methods/0`), with
/// both values (a large one as its size): at most [`DIFFERING_FIELDS`]. A field present on one
/// side only has `null` on the other and says so (`"only": "recorded"` or `"got"`).
fn json_differences(was: &Value, now: &Value, pointer: &mut String, out: &mut Vec<Value>) {
    if out.len() >= DIFFERING_FIELDS || was == now {
        return;
    }
    let mut descend = |key: &str, was: Option<&Value>, now: Option<&Value>, out: &mut Vec<Value>| {
        let len = pointer.len();
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        match (was, now) {
            (Some(was), Some(now)) => json_differences(was, now, pointer, out),
            (was, now) if out.len() < DIFFERING_FIELDS => out.push(json!({
                "pointer": pointer.as_str(),
                "only": if was.is_some() { "recorded" } else { "got" },
                "recorded": was.map_or(Value::Null, shown_value),
                "got": now.map_or(Value::Null, shown_value),
            })),
            _ => {}
        }
        pointer.truncate(len);
    };
    match (was, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                descend(key, a.get(key), b.get(key), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                descend(&i.to_string(), a.get(i), b.get(i), out);
            }
        }
        _ => out.push(json!({
            "pointer": pointer.as_str(),
            "recorded": shown_value(was),
            "got": shown_value(now),
        })),
    }
}

/// A JSON value as a diff shows it: as it is up to 200 bytes, else its size.
fn shown_value(value: &Value) -> Value {
    let text = value.to_string();
    match text.len() <= 200 {
        true => value.clone(),
        false => json!(format!("({} bytes of JSON)", text.len())),
    }
}

/// How many leading `/`-separated segments two paths share (the empty one before the first `/`
/// included), by one pass over their common prefix: runs for every recording on a miss.
pub(crate) fn shared_segments(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let slashes = a[..common].iter().filter(|c| **c == b'/').count();
    let ends_segment = |s: &[u8]| s.get(common).is_none_or(|c| *c == b'/');
    slashes + usize::from(ends_segment(a) && ends_segment(b))
}

/// How many characters `a` and `b` share at their start plus at their end (not counting any
/// twice): the length of both, less one, when they differ by one substitution anywhere.
fn ends_shared(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (prefix + suffix).min(a.len().min(b.len()))
}

/// Method and path (without query) of a request line. Runs for every recording on a miss: byte
/// searches (`memchr`), which `str::split_once(char)` is several times slower than.
fn split_line(line: &str) -> (&str, &str) {
    let (method, target) = match memchr::memchr(b' ', line.as_bytes()) {
        Some(at) => (&line[..at], &line[at + 1..]),
        None => (line, ""),
    };
    let path = match memchr::memchr(b'?', target.as_bytes()) {
        Some(at) => &target[..at],
        None => target,
    };
    (method, path)
}

/// Levenshtein distance on chars, capped in length so a hostile request line stays cheap.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(256).collect();
    let b: Vec<char> = b.chars().take(256).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn differences(was: Value, now: Value) -> Vec<Value> {
        let mut out = Vec::new();
        json_differences(&was, &now, &mut String::new(), &mut out);
        out
    }

    /// What the key tells apart, the diff names: a method in another case, a query value in
    /// other bytes than UTF-8.
    #[test]
    fn a_method_in_another_case_and_query_bytes_beyond_utf8_are_named() {
        use crate::model::fixtures::{get, recording_of};
        let mut recorded = get("/v2/images");
        recorded.query = Some("name=%FE".into());
        let tapes = crate::replay::tape::Tapes::new(&[recording_of(recorded.clone(), &["a"])], Default::default()).unwrap();
        let tape = tapes.read().values().next().cloned().unwrap();
        let mut asked = recorded;
        asked.method = "get".into();
        asked.query = Some("name=%FF".into());
        let found = diff(&MatchRules::default(), &asked, &tape);
        assert_eq!(found[0], json!({"part": "method", "recorded": "GET", "got": "get"}));
        assert_eq!(found[1], json!({"part": "query", "name": "name", "recorded": ["%FE"], "got": ["%FF"]}));
    }

    #[test]
    fn json_differences_name_each_field_by_pointer_and_stop_at_the_limit() {
        let found = differences(
            json!({"a": {"b/c": 1, "gone": true}, "list": [1, 2], "same": "x"}),
            json!({"a": {"b/c": 2, "new": null}, "list": [1, 3, 4], "same": "x"}),
        );
        assert_eq!(
            found,
            [
                json!({"pointer": "/a/b~1c", "recorded": 1, "got": 2}),
                json!({"pointer": "/a/gone", "only": "recorded", "recorded": true, "got": null}),
                json!({"pointer": "/a/new", "only": "got", "recorded": null, "got": null}),
                json!({"pointer": "/list/1", "recorded": 2, "got": 3}),
                json!({"pointer": "/list/2", "only": "got", "recorded": null, "got": 4}),
            ]
        );
        // Another type at the top, and a large value shown by its size.
        let large = "x".repeat(300);
        assert_eq!(
            differences(json!([1]), json!({"k": large})),
            [json!({"pointer": "", "recorded": [1], "got": "(308 bytes of JSON)"})]
        );
        let many: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i:02}"), json!(i))).collect();
        assert_eq!(differences(json!({}), Value::Object(many)).len(), DIFFERING_FIELDS);
    }
}
