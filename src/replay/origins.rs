//! Upstream origins in answers: finding where an answer mentions one ([`mentions`]: as a whole
//! origin, plain or JSON-escaped, with or without its scheme's default port) and pointing them
//! at the proxy ([`rewrite_origins`]), so a client following a link comes back to ims-vcr
//! instead of going to the real cloud; and the one-pass replacement both that and the volatile
//! values' substitution use ([`replace_each`]).

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};

/// True when `needle` is non-empty and in `haystack`.
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// `haystack` with every `from` of `pairs` replaced by its `to`, in one pass from the left (the
/// longest `from` first where several start at one place), so a replacement is never
/// rewritten again: `http://127.0.0.1:80` must not match inside a proxy origin
/// `http://127.0.0.1:8080` put there a moment before.
pub(crate) fn replace_each(haystack: &[u8], pairs: &[(String, String)]) -> Vec<u8> {
    replace_where(haystack, pairs, |_| true, false)
}

/// [`replace_each`] for origins: a `from` is replaced only where it ends the authority
/// ([`ends_authority`]), so `https://h:1` is left alone in `https://h:12/x` and in
/// `https://h:1.evil.example/x`.
fn replace_origins(haystack: &[u8], pairs: &[(String, String)]) -> Vec<u8> {
    replace_where(haystack, pairs, ends_authority, true)
}

/// [`replace_each`], replacing a `from` only where `ends(what follows it)`; `any_case`: a
/// `from` matches in any ASCII letter case (a URL's scheme and host are case-insensitive).
fn replace_where(
    haystack: &[u8],
    pairs: &[(String, String)],
    ends: impl Fn(&[u8]) -> bool,
    any_case: bool,
) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = pairs.iter().filter(|(f, _)| !f.is_empty()).collect();
    sorted.sort_by_key(|pair| std::cmp::Reverse(pair.0.len()));
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    'scan: while i < haystack.len() {
        for (from, to) in &sorted {
            let at = haystack[i..].get(..from.len());
            let matches = at.is_some_and(|at| match any_case {
                true => at.eq_ignore_ascii_case(from.as_bytes()),
                false => at == from.as_bytes(),
            });
            if matches && ends(&haystack[i + from.len()..]) {
                out.extend_from_slice(to.as_bytes());
                i += from.len();
                continue 'scan;
            }
        }
        out.push(haystack[i]);
        i += 1;
    }
    out
}

/// True when `rest`, what follows an origin, does not go on with its host or port: it is
/// empty or starts with a byte no authority continues with (a `/`, `\/`, `?`, `#`, a quote,
/// a space; not a letter, digit, `.`, `-`, `_`, `:` or `@`).
fn ends_authority(rest: &[u8]) -> bool {
    rest.first()
        .is_none_or(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'@')))
}

/// True when `needle` (an origin) is in `place` as a whole origin ([`ends_authority`]).
fn holds_origin(place: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && memchr::memmem::find_iter(place, needle).any(|at| ends_authority(&place[at + needle.len()..]))
}

/// True when `body` or one of `headers` holds `origin` as a whole origin ([`ends_authority`]),
/// plain or JSON-escaped (`https:\/\/…`).
pub fn mentions<'h>(
    origin: &str,
    body: &[u8],
    headers: impl Iterator<Item = &'h HeaderValue>,
) -> bool {
    // Both forms end with what follows the origin's last `/` (its authority), which holds no
    // `/`: where that is absent, neither form is, so most answers are searched once.
    let tail = authority_of(origin);
    // Taken by the one search that runs (`with_finder` runs it once).
    let mut headers = Some(headers);
    let found = with_finder(tail, |tail| {
        let headers = headers.take().into_iter().flatten();
        let places = std::iter::once(body).chain(headers.map(|value| value.as_bytes()));
        if tail.needle().is_empty() {
            return places.collect::<Vec<_>>();
        }
        places.filter(|place| tail.find(place).is_some()).collect()
    });
    if found.is_empty() {
        return false;
    }
    // `//` and the authority: the origin with any spelling of its scheme (`HTTP://`), or
    // none (`//h:1/x`, a scheme-relative link a client follows with its own scheme).
    let relative = format!("//{tail}");
    let escaped = relative.replace('/', "\\/");
    let needles = [relative.as_bytes(), escaped.as_bytes()];
    found
        .into_iter()
        .any(|place| needles.iter().any(|n| holds_origin(place, n)))
}

/// [`mentions`] of `origin` or of its spelling with or without its scheme's default port
/// ([`default_port_spelling`]: `https://h` and `https://h:443`). Both spellings hold the
/// shorter one's authority (`h`): where that is nowhere in the answer, neither spelling is, and
/// the answer is searched once instead of twice (an upstream named without a port, as a cloud
/// endpoint is, has the other spelling on every relayed answer).
pub(super) fn mentions_either_spelling(origin: &str, body: &[u8], headers: &HeaderMap) -> bool {
    let Some(other) = default_port_spelling(origin) else {
        return mentions(origin, body, headers.values());
    };
    let shorter = if other.len() < origin.len() { other.as_str() } else { origin };
    let holds_shorter = with_finder(authority_of(shorter), |finder| {
        std::iter::once(body)
            .chain(headers.values().map(HeaderValue::as_bytes))
            .any(|place| finder.find(place).is_some())
    });
    holds_shorter
        && (mentions(origin, body, headers.values()) || mentions(&other, body, headers.values()))
}

/// What follows `origin`'s last `/`: its authority (`h:443` of `https://h:443`).
fn authority_of(origin: &str) -> &str {
    match origin.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(at) => &origin[at + 1..],
        None => origin,
    }
}

/// How many finders [`with_finder`] keeps per thread: the routes' origins are a handful.
pub(super) const FINDERS: usize = 8;

thread_local! {
    /// Finders built for [`mentions`], by needle. Building one (its prefilter and factorisation)
    /// costs more than searching a whole answer with it, and every relayed answer is searched
    /// for the same few origins.
    static FINDER_CACHE: std::cell::RefCell<Vec<memchr::memmem::Finder<'static>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `search` once, with a finder of `needle` built once per thread (up to [`FINDERS`]
/// needles; past that the oldest is dropped).
fn with_finder<T>(needle: &str, mut search: impl FnMut(&memchr::memmem::Finder<'_>) -> T) -> T {
    FINDER_CACHE
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return search(&memchr::memmem::Finder::new(needle));
            };
            let at = match cache.iter().position(|f| f.needle() == needle.as_bytes()) {
                Some(at) => at,
                None => {
                    if cache.len() == FINDERS {
                        cache.remove(0);
                    }
                    cache.push(memchr::memmem::Finder::new(needle).into_owned());
                    cache.len() - 1
                }
            };
            search(&cache[at])
        })
        // The thread is ending (its locals are gone): a finder of its own.
        .unwrap_or_else(|_| search(&memchr::memmem::Finder::new(needle)))
}

/// The other spelling of `origin` with its scheme's default port, which names the same
/// server: `https://h` and `https://h:443`, `http://h` and `http://h:80`. `None` for an origin
/// with another port.
pub(super) fn default_port_spelling(origin: &str) -> Option<String> {
    // Byte checks only: this runs for every relayed answer that does not mention an origin.
    let (default, rest) = match origin.strip_prefix("https://") {
        Some(rest) => (":443", rest),
        None => (":80", origin.strip_prefix("http://")?),
    };
    if let Some(host) = rest.strip_suffix(default) {
        return Some(format!("{}{host}", &origin[..origin.len() - rest.len()]));
    }
    // Another port: a `:` after the host (after an IPv6 literal's `]`).
    let host_end = match rest.as_bytes().first() {
        Some(b'[') => rest.bytes().position(|b| b == b']').map_or(rest.len(), |at| at + 1),
        _ => 0,
    };
    if rest.as_bytes()[host_end..].contains(&b':') {
        return None;
    }
    Some(format!("{origin}{default}"))
}

/// Body and headers with each of `upstreams` (plain and JSON-escaped `\/` forms) replaced by
/// `proxy` where it is a whole origin ([`replace_origins`]); the body only when `text_body`.
pub(super) fn rewrite_origins(
    body: &Bytes,
    text_body: bool,
    headers: &HeaderMap,
    upstreams: &[String],
    proxy: &str,
) -> (Bytes, HeaderMap) {
    let pairs: Vec<(String, String)> = upstreams
        .iter()
        .flat_map(|upstream| std::iter::once(upstream.clone()).chain(default_port_spelling(upstream)))
        .flat_map(|upstream| {
            // Scheme-relative (`//h/x`, followed with the client's own scheme): the authority
            // alone is replaced. The pairs with the scheme are longer, so they come first where
            // they fit, in any letter case (`HTTPS://H`): the proxy's whole origin then.
            let relative = format!("//{}", authority_of(&upstream));
            let to_relative = format!("//{}", authority_of(proxy));
            [
                (upstream.replace('/', "\\/"), proxy.replace('/', "\\/")),
                (relative.replace('/', "\\/"), to_relative.replace('/', "\\/")),
                (upstream, proxy.to_owned()),
                (relative, to_relative),
            ]
        })
        .collect();
    let rewrite = |bytes: &[u8]| replace_origins(bytes, &pairs);
    let mut new_headers = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // A rewritten value is still valid: both origins are printable ASCII.
        let value =
            HeaderValue::from_bytes(&rewrite(value.as_bytes())).unwrap_or_else(|_| value.clone());
        new_headers.append(name.clone(), value);
    }
    let body = if text_body {
        Bytes::from(rewrite(body))
    } else {
        body.clone()
    };
    (body, new_headers)
}
